// The app with an IAM policy from before it wrote its `applied` marks with BatchWriteItem: the
// state table refuses that one action (AccessDenied), as DynamoDB does. The app says so once, in its
// log, and still remembers every acknowledged record as applied, one PutItem each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateTable } from '../../services/core/state/table.ts';
import { dynamoError, dynamoOperation, startAppStateProxyStack, type AppStateProxyStack } from '../helpers/appStateProxy.ts';
import type { TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let relay: AppStateProxyStack;
let stack: TestStack;
let table: StateTable;
const operations: string[] = [];

beforeAll(async () => {
  // The app's DynamoDB endpoint refuses BatchWriteItem and passes the rest on.
  relay = await startAppStateProxyStack((req) => {
    const operation = dynamoOperation(req);
    operations.push(operation);
    if (operation !== 'BatchWriteItem') return undefined;
    return dynamoError(400, 'com.amazon.coral.service#AccessDeniedException', 'not authorized to perform: dynamodb:BatchWriteItem');
  });
  ({ stack, table } = relay);
}, 60_000);
afterAll(async () => {
  await relay?.stop();
});

async function submitAndAck(n: number): Promise<string> {
  const sub = await stack.iface.server.inject({
    method: 'POST',
    url: '/v1/submissions',
    headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
    payload: JSON.stringify({ resourceType: 'Patient', id: `p${n}` }),
  });
  expect(sub.statusCode).toBe(202);
  const { id } = sub.json() as { id: string };
  await waitFor(() => stack.app.inbox.get(id), { what: `record ${n} in the inbox` });
  const ack = await stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${stack.tokens.reader}` } });
  expect(ack.statusCode).toBe(200);
  return id;
}

describe('app state table without BatchWriteItem (an IAM policy from before the batched marks)', () => {
  it('logs CR_STATE_BATCH_DENIED once and still marks every acknowledged record applied', async () => {
    const ids = [await submitAndAck(1), await submitAndAck(2), await submitAndAck(3)];
    for (const id of ids) {
      await waitFor(async () => (await table.get(`apply#${id}`))?.state === 'applied', { what: `apply#${id} applied` });
    }
    const denied = stack.logs.app.entries().filter((e) => e.code === 'CR_STATE_BATCH_DENIED');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ level: 40 }); // warn
    expect(String(denied[0]!.msg)).toMatch(/dynamodb:BatchWriteItem/);
    expect(stack.logs.app.entries().filter((e) => e.msg === 'could not mark the envelope applied')).toEqual([]);
    // Asked once, then never again: the later marks went straight to PutItem.
    expect(operations.filter((o) => o === 'BatchWriteItem')).toHaveLength(1);
    expect(operations.filter((o) => o === 'PutItem').length).toBeGreaterThanOrEqual(3);
  });
});
