import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPutBatcher } from '../../../services/core/state/putBatcher.ts';
import { openStateTable, PartialPutError, type StateTable } from '../../../services/core/state/table.ts';

/** A recorded call: the DynamoDB operation and its JSON body. */
type Call = { target: string; body: Record<string, unknown> };
/** What the fake answers a call: a status (200 by default) and a JSON body. */
type Answer = { status?: number; body: unknown };

/**
 * A DynamoDB endpoint on a real socket that records every call in `calls` and answers with
 * `answer` (an empty object for the operations it does not handle).
 */
async function fakeDynamo(calls: Call[], answer: (call: Call) => Answer | undefined): Promise<{ endpoint: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call = { target: String(req.headers['x-amz-target']).split('.').pop()!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> };
      calls.push(call);
      const out = answer(call) ?? { body: {} };
      res.statusCode = out.status ?? 200;
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      res.end(JSON.stringify(out.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

// A DynamoDB endpoint that leaves part of every BatchWriteItem unprocessed (as DynamoDB does when
// throttled), which the embedded store never does.
let server: Server;
let table: StateTable;
const calls: Call[] = [];
beforeAll(async () => {
  const fake = await fakeDynamo(calls, ({ target, body }) => {
    if (target !== 'BatchWriteItem') return undefined;
    const requests = (body.RequestItems as Record<string, unknown[]>)['unprocessed-test']!;
    // The last one is left for later.
    return { body: { UnprocessedItems: requests.length > 1 ? { 'unprocessed-test': requests.slice(-1) } : {} } };
  });
  server = fake.server;
  table = openStateTable({ table: 'unprocessed-test', region: 'us-east-1', endpoint: fake.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});
afterAll(async () => {
  await table.close();
  await new Promise((resolve) => server.close(resolve));
});

describe('state table putMany (BatchWriteItem)', () => {
  it('writes the items the store left unprocessed one by one, and counts each call', async () => {
    const before = table.calls;
    await table.putMany([{ pk: 'a', n: 1 }, { pk: 'b', n: 2 }, { pk: 'c', n: 3 }]);
    expect(calls.map((c) => c.target)).toEqual(['BatchWriteItem', 'PutItem']);
    expect(calls[1]!.body).toMatchObject({ TableName: 'unprocessed-test', Item: { pk: { S: 'c' }, n: { N: '3' } } });
    expect(table.calls - before).toBe(2);
  });

  it('refuses more than 25 items (one BatchWriteItem) before calling the store', async () => {
    calls.length = 0;
    await expect(table.putMany(Array.from({ length: 26 }, (_, i) => ({ pk: `k${i}` })))).rejects.toThrow(RangeError);
    expect(calls).toEqual([]);
  });
});

describe('state table putMany when BatchWriteItem is not allowed (an IAM policy without it)', () => {
  let denyingServer: Server;
  let denying: StateTable;
  const seen: Call[] = [];
  const denied: unknown[] = [];
  beforeAll(async () => {
    // What DynamoDB answers when the caller's policy lacks the action.
    const fake = await fakeDynamo(seen, ({ target }) =>
      target === 'BatchWriteItem' ? { status: 400, body: { __type: 'com.amazon.coral.service#AccessDeniedException', message: 'User is not authorized to perform: dynamodb:BatchWriteItem' } } : undefined,
    );
    denyingServer = fake.server;
    denying = openStateTable({
      table: 'denied-test',
      region: 'us-east-1',
      endpoint: fake.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      onBatchDenied: (err) => denied.push(err),
    });
  });
  afterAll(async () => {
    await denying.close();
    await new Promise((resolve) => denyingServer.close(resolve));
  });

  it('writes every item with its own PutItem, reports the refusal once and stops asking', async () => {
    await denying.putMany([{ pk: 'a', n: 1 }, { pk: 'b', n: 2 }]);
    expect(seen.map((c) => c.target)).toEqual(['BatchWriteItem', 'PutItem', 'PutItem']);
    expect(seen.slice(1).map((c) => (c.body.Item as { pk: { S: string } }).pk.S).sort()).toEqual(['a', 'b']);
    expect(denied).toHaveLength(1);
    expect((denied[0] as { name?: string }).name).toBe('AccessDeniedException');

    seen.length = 0;
    const before = denying.calls;
    await denying.putMany([{ pk: 'c', n: 3 }]);
    expect(seen.map((c) => c.target)).toEqual(['PutItem']);
    expect(denying.calls - before).toBe(1);
    expect(denied).toHaveLength(1);
  });
});

describe('state table putMany when some items cannot be written', () => {
  let failingServer: Server;
  let failing: StateTable;
  const seen: Call[] = [];
  beforeAll(async () => {
    // The store leaves two of three items unprocessed, then refuses the PutItem of `bad` (as DynamoDB
    // does when an item breaks a limit) and takes the other.
    const fake = await fakeDynamo(seen, ({ target, body }) => {
      if (target === 'BatchWriteItem') return { body: { UnprocessedItems: { 'partial-test': (body.RequestItems as Record<string, unknown[]>)['partial-test']!.slice(1) } } };
      if (target === 'PutItem' && (body.Item as { pk: { S: string } }).pk.S.startsWith('bad')) {
        return { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ValidationException', message: 'Item size has exceeded the maximum allowed size' } };
      }
      return undefined;
    });
    failingServer = fake.server;
    failing = openStateTable({ table: 'partial-test', region: 'us-east-1', endpoint: fake.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  });
  afterAll(async () => {
    await failing.close();
    await new Promise((resolve) => failingServer.close(resolve));
  });

  it('rejects naming only the items not written, each with its own error; the others are written', async () => {
    seen.length = 0;
    const err = await failing.putMany([{ pk: 'ok-1' }, { pk: 'bad-1' }, { pk: 'ok-2' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PartialPutError);
    expect([...(err as PartialPutError).failed.keys()]).toEqual(['bad-1']);
    expect((err as PartialPutError).failed.get('bad-1')).toMatchObject({ name: 'ValidationException' });
    // ok-1 went in the BatchWriteItem; bad-1 and ok-2 were each tried with their own PutItem.
    expect(seen.map((c) => c.target).sort()).toEqual(['BatchWriteItem', 'PutItem', 'PutItem']);
  });

  it('through the put batcher, only the caller of the item not written fails', async () => {
    const batcher = createPutBatcher(failing);
    const results = await Promise.allSettled([batcher.put({ pk: 'ok-3' }), batcher.put({ pk: 'bad-2' }), batcher.put({ pk: 'ok-4' })]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ name: 'ValidationException' });
  });
});
