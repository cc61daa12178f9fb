import { DescribeTableCommand, DynamoDBClient, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { createDynamoJson } from './dynamoJson.ts';
import { StateError } from './errors.ts';
import { AwsSha256 } from '../runtime/awsSha256.ts';

/** One item of a state table: `pk` is the key, `ttl` (epoch seconds) when DynamoDB may delete it. */
export type StateItem = Record<string, unknown> & { pk: string };

/** An update: the expression and its placeholders, as DynamoDB takes them. */
export interface StateUpdate {
  /** `SET ...`, `ADD ...`, `REMOVE ...`. */
  update: string;
  /** Condition the item must meet, or the update is not made. */
  condition?: string;
  /** `#name` placeholders. */
  names?: Record<string, string>;
  /** `:value` placeholders. */
  values?: Record<string, unknown>;
}

/**
 * A service's own DynamoDB table, holding the state that makes its effects exactly-once
 * across restarts and instances. Every read is strongly consistent; a write whose
 * condition fails answers `undefined`/`false` instead of throwing.
 */
export interface StateTable {
  /** Physical table name. */
  readonly name: string;
  /** Calls made to the store so far (for the benchmark). */
  readonly calls: number;
  /** Reads an item (consistent read). */
  get(pk: string): Promise<StateItem | undefined>;
  /** Writes an item; false when `condition` failed. */
  put(item: StateItem, condition?: Omit<StateUpdate, 'update'>): Promise<boolean>;
  /**
   * Writes up to {@link BATCH_WRITE_MAX} items unconditionally in one call (BatchWriteItem, distinct
   * keys); the items the store left unprocessed (throttling) are written one by one. When the
   * store refuses BatchWriteItem itself (`AccessDeniedException`: an IAM policy from before the
   * action was needed), this and every later call writes each item with its own PutItem, and
   * `onBatchDenied` is called once. When only some items could not be written (one of those
   * PutItems failed), it rejects with {@link PartialPutError} naming them: the others are written.
   * Any other failure means none was.
   */
  putMany(items: readonly StateItem[]): Promise<void>;
  /** Updates (or creates) an item; the new item, or undefined when the condition failed. */
  update(pk: string, change: StateUpdate): Promise<StateItem | undefined>;
  /** Deletes an item; false when `condition` failed. */
  delete(pk: string, condition?: Omit<StateUpdate, 'update'>): Promise<boolean>;
  /** Fails with CR_STATE_TABLE_MISSING when the table does not exist or cannot be described. */
  check(): Promise<void>;
  /** Closes the client once the calls still in flight have settled (at most 5 s). */
  close(): Promise<void>;
}

/** `putMany` wrote some of its items: the keys of those it could not write, each with its error. */
export class PartialPutError extends Error {
  /** Key (`pk`) → the error its write failed with. */
  readonly failed: ReadonlyMap<string, unknown>;
  constructor(failed: ReadonlyMap<string, unknown>) {
    super(`state table: ${failed.size} item(s) of a batch not written`);
    this.name = 'PartialPutError';
    this.failed = failed;
  }
}

/** The most items one BatchWriteItem call takes. */
export const BATCH_WRITE_MAX = 25;

/** Options for {@link openStateTable}. */
export interface StateTableOptions {
  /** Table name. */
  table: string;
  /** AWS region. */
  region: string;
  /** Endpoint (dynalite, LocalStack); omit for AWS. */
  endpoint?: string;
  /** Static credentials; omit for the default AWS credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Called once when the store refuses BatchWriteItem (AccessDeniedException) and `putMany` falls back to one PutItem per item. */
  onBatchDenied?: (err: unknown) => void;
}

/**
 * Creates the SDK's DynamoDB client for a state table: the credentials and endpoint rules of the
 * table's own calls (dynamoJson.ts), its start check, and the CLI's table creation (the SDK's own
 * retry: 3 attempts). The SDK resolves each command class's middleware once and reuses it
 * (`cacheMiddleware`); middleware added after a command's first call would not apply to it.
 */
export function createDynamoClient(options: Omit<StateTableOptions, 'table'>): DynamoDBClient {
  return new DynamoDBClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5000 },
    cacheMiddleware: true,
    // Request signing with each HMAC key made once (runtime/awsSha256.ts).
    sha256: AwsSha256,
  });
}

/** Plain values to DynamoDB's attribute values, as the services write them (undefined fields left out). */
const toItem = (value: Record<string, unknown>): Record<string, AttributeValue> => marshall(value, { removeUndefinedValues: true });

/** An item read back, as plain values (numbers as numbers). */
const fromItem = (item: Record<string, AttributeValue>): StateItem => unmarshall(item) as StateItem;

/**
 * Opens a service's state table (no call is made until it is used). The per-message calls (get,
 * put, update, delete, batch write) go through {@link createDynamoJson}, with the SDK client's
 * credentials and endpoint rules; `check` goes through the SDK.
 */
export function openStateTable(options: StateTableOptions): StateTable {
  const client = createDynamoClient(options);
  const json = createDynamoJson({ client, region: options.region });
  const TableName = options.table;
  let calls = 0;
  let batchDenied = false;
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.then(
      () => inFlight.delete(p),
      () => inFlight.delete(p),
    );
    return p;
  };
  const expr = (c?: Omit<StateUpdate, 'update'>) => ({
    ...(c?.condition ? { ConditionExpression: c.condition } : {}),
    ...(c?.names ? { ExpressionAttributeNames: c.names } : {}),
    ...(c?.values ? { ExpressionAttributeValues: toItem(c.values) } : {}),
  });
  const conditional = async <T>(work: () => Promise<T>, failed: T): Promise<T> => {
    calls++;
    try {
      return await track(work());
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') return failed;
      throw err;
    }
  };
  return {
    name: TableName,
    get calls() {
      return calls;
    },
    async get(pk) {
      calls++;
      const res = await track(json.call<{ Item?: Record<string, AttributeValue> }>('GetItem', { TableName, Key: toItem({ pk }), ConsistentRead: true }));
      return res.Item ? fromItem(res.Item) : undefined;
    },
    put(item, condition) {
      return conditional(async () => {
        await json.call('PutItem', { TableName, Item: toItem(item), ...expr(condition) });
        return true;
      }, false);
    },
    async putMany(items) {
      if (items.length === 0) return;
      if (items.length > BATCH_WRITE_MAX) throw new RangeError(`putMany: at most ${BATCH_WRITE_MAX} items, got ${items.length}`);
      // Each item on its own (PutItem), all at once; fails with the keys that were not written only.
      const putEach = async (each: readonly Record<string, AttributeValue>[]): Promise<void> => {
        const results = await Promise.allSettled(
          each.map((Item) => {
            calls++;
            return track(json.call('PutItem', { TableName, Item }));
          }),
        );
        const failed = new Map<string, unknown>();
        results.forEach((r, i) => {
          if (r.status === 'rejected') failed.set(each[i]!.pk?.S ?? '', r.reason);
        });
        if (failed.size > 0) throw new PartialPutError(failed);
      };
      const marshalled = items.map(toItem);
      if (batchDenied) return putEach(marshalled);
      calls++;
      let res;
      try {
        res = await track(
          json.call<{ UnprocessedItems?: Record<string, { PutRequest?: { Item?: Record<string, AttributeValue> } }[]> }>('BatchWriteItem', { RequestItems: { [TableName]: marshalled.map((Item) => ({ PutRequest: { Item } })) } }),
        );
      } catch (err) {
        if ((err as { name?: string }).name !== 'AccessDeniedException') throw err;
        // Refused before anything was written: the same items, one PutItem each, from now on.
        if (!batchDenied) {
          batchDenied = true;
          options.onBatchDenied?.(err);
        }
        return putEach(marshalled);
      }
      const unprocessed = (res.UnprocessedItems?.[TableName] ?? []).flatMap((request) => (request.PutRequest?.Item ? [request.PutRequest.Item] : []));
      if (unprocessed.length > 0) await putEach(unprocessed);
    },
    update(pk, change) {
      return conditional(async () => {
        const res = await json.call<{ Attributes?: Record<string, AttributeValue> }>('UpdateItem', { TableName, Key: toItem({ pk }), UpdateExpression: change.update, ReturnValues: 'ALL_NEW', ...expr(change) });
        return res.Attributes ? fromItem(res.Attributes) : undefined;
      }, undefined);
    },
    delete(pk, condition) {
      return conditional(async () => {
        await json.call('DeleteItem', { TableName, Key: toItem({ pk }), ...expr(condition) });
        return true;
      }, false);
    },
    async check() {
      calls++;
      try {
        await client.send(new DescribeTableCommand({ TableName }));
      } catch (err) {
        throw new StateError('CR_STATE_TABLE_MISSING', `state table "${TableName}" (STATE_TABLE) is not reachable: ${(err as { name?: string }).name ?? 'error'}; create it with \`care-relay queues init\``, { cause: err });
      }
    },
    async close() {
      // A write cut off by destroying the client may still be applied; let it finish instead.
      const deadline = new Promise((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
      json.destroy();
      client.destroy();
    },
  };
}

/** Epoch seconds `seconds` from `now`: the `ttl` attribute value. */
export function ttlAfter(seconds: number, now: number = Date.now()): number {
  return Math.floor(now / 1000) + seconds;
}
