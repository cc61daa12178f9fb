import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateTable, type StateTable } from '../../../services/core/state/table.ts';

// A DynamoDB endpoint that leaves part of every BatchWriteItem unprocessed (as DynamoDB does when
// throttled), which the embedded store never does.
let server: Server;
let table: StateTable;
const calls: Array<{ target: string; body: Record<string, unknown> }> = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target']).split('.').pop()!;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      calls.push({ target, body });
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (target === 'BatchWriteItem') {
        const requests = (body.RequestItems as Record<string, unknown[]>)['unprocessed-test']!;
        // The last one is left for later.
        res.end(JSON.stringify({ UnprocessedItems: requests.length > 1 ? { 'unprocessed-test': requests.slice(-1) } : {} }));
      } else res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  table = openStateTable({ table: 'unprocessed-test', region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
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
  const seen: Array<{ target: string; body: Record<string, unknown> }> = [];
  const denied: unknown[] = [];
  beforeAll(async () => {
    denyingServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target']).split('.').pop()!;
        seen.push({ target, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        res.setHeader('content-type', 'application/x-amz-json-1.0');
        if (target === 'BatchWriteItem') {
          // What DynamoDB answers when the caller's policy lacks the action.
          res.statusCode = 400;
          res.end(JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message: 'User is not authorized to perform: dynamodb:BatchWriteItem' }));
        } else res.end('{}');
      });
    });
    await new Promise<void>((resolve) => denyingServer.listen(0, '127.0.0.1', resolve));
    const { port } = denyingServer.address() as AddressInfo;
    denying = openStateTable({
      table: 'denied-test',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
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
