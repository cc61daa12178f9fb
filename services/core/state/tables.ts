import { CreateTableCommand, DescribeTableCommand, UpdateTimeToLiveCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** The services that own a state table. */
export const STATE_SERVICES = ['interface', 'app'] as const;

/** The attribute DynamoDB's TTL reads (epoch seconds). */
export const TTL_ATTRIBUTE = 'ttl';

/** Default table name of a service: `<QUEUE_PREFIX><service>-state` (STATE_TABLE overrides it). */
export function stateTableName(prefix: string, service: string): string {
  return `${prefix}${service}-state`;
}

/** What {@link ensureStateTable} did. */
export interface EnsuredTable {
  /** Table name. */
  name: string;
  /** True when this call created it. */
  created: boolean;
  /** `enabled`, or `unsupported` when the endpoint (an emulator) has no TTL API. */
  ttl: 'enabled' | 'unsupported';
}

/**
 * Creates a state table (key `pk`, on-demand) unless it exists, waits until it is active,
 * and enables TTL on `ttl`. Idempotent. Expiry is also checked on every read, since
 * DynamoDB deletes expired items only eventually and emulators not at all.
 */
export async function ensureStateTable(client: DynamoDBClient, name: string, timeoutMs = 60_000): Promise<EnsuredTable> {
  let created = false;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    created = true;
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceInUseException') throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.send(new DescribeTableCommand({ TableName: name }));
    if (res.Table?.TableStatus === 'ACTIVE') break;
    if (Date.now() > deadline) throw new Error(`table ${name} did not become active within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  try {
    await client.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true } }));
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'UnknownOperationException') return { name, created, ttl: 'unsupported' };
    // DynamoDB refuses to enable TTL twice; that is the idempotent case.
    if (!(e.name === 'ValidationException' && /already enabled/i.test(e.message ?? ''))) throw err;
  }
  return { name, created, ttl: 'enabled' };
}
