// `care-relay queues`: create the SQS queues, their DLQs and quarantine queues, the alerts topic and the state tables.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createSnsClient } from '../core/alerts/snsNotifier.ts';
import { envVar, parseEnv } from '../core/config/env.ts';
import { alertTopicName, ensureAlertTopic } from '../core/alerts/topic.ts';
import { createDynamoClient } from '../core/state/table.ts';
import { ensureStateTable, STATE_SERVICES, stateTableName } from '../core/state/tables.ts';
import { ensureQueues, queueDefinitions } from '../core/transport/queues.ts';
import { createSqsClient } from '../core/transport/sqsClient.ts';
import { describeFailure } from './failure.ts';

/** The variables of `queues` checked as the services check them (services/core/config/common.ts). */
const queuesEnvSchema = z.object({
  /** The main queues' MessageRetentionPeriod, and the large-object expiry (one day more). */
  MESSAGE_MAX_AGE_SECONDS: envVar.int(345_600, 60, 1_209_600),
});

/** Creates the large-object bucket with its lifecycle rule; resolves with the expiry in days. */
async function initObjectBucket(o: { bucket: string; region: string; endpoint: string | undefined; hasCredentials: boolean; retentionSeconds: number }): Promise<number> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { ensureObjectBucket, expiryDays } = await import('../core/objects/bucket.ts');
  const s3 = new S3Client({
    region: o.region,
    ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
    ...(o.endpoint && !o.hasCredentials ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
  });
  try {
    const days = expiryDays(o.retentionSeconds);
    await ensureObjectBucket(s3, { bucket: o.bucket, region: o.region, expireAfterDays: days });
    return days;
  } finally {
    s3.destroy();
  }
}

/** Where the command reads its environment and writes its output (tests pass their own). */
export interface QueuesCliIo {
  /** Environment variables; default process.env. */
  env?: Record<string, string | undefined>;
  /** Standard output lines; default console.log. */
  out?: (line: string) => void;
  /** Error lines; default console.error. */
  err?: (line: string) => void;
}

/** Help of `care-relay queues`. */
export const USAGE = `usage: care-relay queues init [--prefix P] [--fifo] [--max-receive-count N] [--kms-key KEY]
       care-relay queues list [--prefix P] [--fifo] [--max-receive-count N] [--kms-key KEY]

  init   create every queue, its -dlq (redrive) and its -quarantine queue, the
         SNS topic <prefix>care-relay-alerts for alert notifications, and each
         service's DynamoDB state table (<prefix>interface-state, <prefix>app-state,
         TTL on "ttl"), and, when LARGE_OBJECT_BUCKET is set, the large-document
         bucket (public access blocked, lifecycle rule); idempotent
  list   print the queue definitions (names and attributes) as JSON, without calling SQS

options:
  --prefix P              queue-name prefix (default: QUEUE_PREFIX, else none)
  --fifo                  FIFO queues (names end .fifo); default from QUEUE_FIFO
  --max-receive-count N   receives before a message moves to its DLQ (default 5)
  --kms-key KEY           SSE-KMS with this customer-managed key (key id, key ARN or
                          alias/NAME) on every queue; default from QUEUE_KMS_KEY_ID,
                          else SSE-SQS (docs/deploy.md: the key policy it needs)

environment:
  SQS_ENDPOINT        endpoint URL (LocalStack, emulator); unset for AWS
  SNS_ENDPOINT        SNS endpoint URL; default SQS_ENDPOINT
  DYNAMODB_ENDPOINT   DynamoDB endpoint URL (LocalStack, dynalite); unset for AWS
  AWS_REGION          region (default us-east-1)
  QUEUE_PREFIX        default for --prefix
  QUEUE_FIFO          default for --fifo (true/1/yes)
  QUEUE_KMS_KEY_ID    default for --kms-key
  LARGE_OBJECT_BUCKET       bucket of large documents (created when set)
  LARGE_OBJECT_S3_ENDPOINT  its S3 endpoint URL (LocalStack, emulator); default SQS_ENDPOINT
  MESSAGE_MAX_AGE_SECONDS   retention of the main queues (MessageRetentionPeriod, 60 to 1209600;
                            default 345600, 4 days), as the services read it; large objects
                            expire one day after it. DLQs and quarantine queues keep 14 days.
  With an endpoint set and no AWS credentials in the environment, dummy credentials are used.`;

/** The options of every `queues` subcommand (node:util parseArgs form; the runner declares the same to commander). */
export const OPTIONS = {
  prefix: { type: 'string' },
  fifo: { type: 'boolean' },
  'max-receive-count': { type: 'string' },
  'kms-key': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Reports a failure as every command does (one line: code and message, never an SDK's raw text); resolves with its exit code. */
function fail(err: (line: string) => void, e: unknown): number {
  const f = describeFailure(e);
  err(`care-relay queues: ${f.code} ${f.message}`);
  return f.exitCode;
}

/** Runs `care-relay queues <subcommand>`; resolves with the exit code. */
export async function run(argv: string[], io: QueuesCliIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: OPTIONS,
    });
  } catch (e) {
    err(`care-relay queues: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [sub] = parsed.positionals;
  if (parsed.values.help || sub === 'help') {
    out(USAGE);
    return 0;
  }
  if (sub !== 'init' && sub !== 'list') {
    err(`care-relay queues: ${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${USAGE}`);
    return 2;
  }
  const rawCount = parsed.values['max-receive-count'];
  const maxReceiveCount = rawCount === undefined ? 5 : Number(rawCount);
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
    err(`care-relay queues: --max-receive-count: expected an integer from 1 to 1000, got "${rawCount}"`);
    return 2;
  }
  const kmsMasterKeyId = parsed.values['kms-key'] ?? (env.QUEUE_KMS_KEY_ID || undefined);
  if (kmsMasterKeyId !== undefined && !/^[A-Za-z0-9:/_-]{1,2048}$/.test(kmsMasterKeyId)) {
    err(`care-relay queues: --kms-key: expected a KMS key id, key ARN or alias/NAME, got "${kmsMasterKeyId}"`);
    return 2;
  }
  let retentionSeconds: number;
  try {
    retentionSeconds = parseEnv(queuesEnvSchema, { MESSAGE_MAX_AGE_SECONDS: env.MESSAGE_MAX_AGE_SECONDS }).MESSAGE_MAX_AGE_SECONDS;
  } catch (e) {
    return fail(err, e);
  }
  const layout = {
    prefix: parsed.values.prefix ?? env.QUEUE_PREFIX ?? '',
    fifo: parsed.values.fifo ?? ['true', '1', 'yes'].includes(env.QUEUE_FIFO ?? ''),
    maxReceiveCount,
    retentionSeconds,
    ...(kmsMasterKeyId ? { kmsMasterKeyId } : {}),
  };
  if (sub === 'list') {
    out(JSON.stringify(queueDefinitions(layout), null, 2));
    return 0;
  }
  const endpoint = env.SQS_ENDPOINT || undefined;
  const region = env.AWS_REGION || 'us-east-1';
  const hasCredentials = Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE || env.AWS_WEB_IDENTITY_TOKEN_FILE || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI);
  const client = createSqsClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    // Local endpoints accept any credentials; this keeps the SDK from probing for real ones.
    ...(endpoint && !hasCredentials ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
  });
  const snsEndpoint = env.SNS_ENDPOINT || endpoint;
  const sns = createSnsClient({ region, endpoint: snsEndpoint, ...(snsEndpoint && !hasCredentials ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}) });
  const dynamoEndpoint = env.DYNAMODB_ENDPOINT || undefined;
  const dynamo = createDynamoClient({
    region,
    ...(dynamoEndpoint ? { endpoint: dynamoEndpoint } : {}),
    ...(dynamoEndpoint && !hasCredentials ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
  });
  try {
    const queues = await ensureQueues(client, layout);
    for (const [logical, q] of Object.entries(queues)) {
      out(`${logical}`);
      out(`  queue       ${q.url}`);
      out(`  dlq         ${q.dlqUrl}`);
      out(`  quarantine  ${q.quarantineUrl}`);
    }
    out(`alerts topic  ${await ensureAlertTopic(sns, alertTopicName(layout.prefix))}  (ALERT_SNS_TOPIC_ARN)`);
    for (const service of STATE_SERVICES) {
      const table = await ensureStateTable(dynamo, stateTableName(layout.prefix, service));
      out(`${service} state table`);
      out(`  table       ${table.name}${table.created ? ' (created)' : ''}`);
      out(`  ttl         ${table.ttl === 'enabled' ? 'enabled (ttl)' : 'not supported by this endpoint'}`);
    }
    const bucket = env.LARGE_OBJECT_BUCKET || undefined;
    if (bucket) {
      const s3Endpoint = env.LARGE_OBJECT_S3_ENDPOINT || endpoint;
      const days = await initObjectBucket({ bucket, region, endpoint: s3Endpoint, hasCredentials, retentionSeconds });
      out('large-object bucket');
      out(`  bucket      ${bucket}  (LARGE_OBJECT_BUCKET)`);
      out(`  lifecycle   objects expire after ${days} days; unfinished uploads after 1`);
    }
    return 0;
  } catch (e) {
    return fail(err, e);
  } finally {
    client.destroy();
    sns.destroy();
    dynamo.destroy();
  }
}
