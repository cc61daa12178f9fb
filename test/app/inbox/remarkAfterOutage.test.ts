// An acknowledgement whose `applied` mark the state table refused at the ack: the record's queue
// message is deleted all the same (the ack answers 200), and the mark is written later, once the
// table takes it again, so that the ack repeated at another app instance answers 200, not 404.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAppConfig } from '../../../services/app/config.ts';
import { startAppService } from '../../../services/app/service.ts';
import type { StateTable } from '../../../services/core/state/table.ts';
import { dynamoError, dynamoOperation, startAppStateProxyStack, type AppStateProxyStack } from '../../helpers/appStateProxy.ts';
import { captureLogger } from '../../helpers/logs.ts';
import type { TestStack } from '../../helpers/stack.ts';
import { readTrail } from '../../helpers/trail.ts';
import { waitFor } from '../../helpers/wait.ts';

const NAME = 'Remarkperson';

let relay: AppStateProxyStack;
let stack: TestStack;
let table: StateTable;
/** While true, the state table answers every write of an `apply#` mark with a server error, as in an outage. */
let refusingMarks = false;
let refused = 0;

beforeAll(async () => {
  relay = await startAppStateProxyStack((req) => {
    if (!refusingMarks || !['BatchWriteItem', 'PutItem', 'UpdateItem'].includes(dynamoOperation(req))) return undefined;
    const body = req.body.toString('utf8');
    if (!body.includes('"apply#') || !body.includes('"applied"')) return undefined;
    refused++;
    return dynamoError(500, 'com.amazonaws.dynamodb.v20120810#InternalServerError', 'Internal server error');
  });
  ({ stack, table } = relay);
}, 60_000);
afterAll(async () => {
  await relay?.stop();
});

const ack = (app: Pick<TestStack['app'], 'server'>, id: string) =>
  app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${stack.tokens.reader}` } });

describe('an acknowledgement whose mark failed', () => {
  it('is marked applied once the state table takes writes again: the ack repeated at a second instance answers 200, not 404', async () => {
    const sub = await stack.iface.server.inject({
      method: 'POST',
      url: '/v1/submissions',
      headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
      payload: JSON.stringify({ resourceType: 'Patient', id: 'remark-1', name: [{ family: NAME }] }),
    });
    expect(sub.statusCode).toBe(202);
    const { id } = sub.json() as { id: string };
    await waitFor(() => stack.app.inbox.get(id), { what: 'record held' });

    refusingMarks = true;
    const first = await ack(stack.app, id);
    // Final all the same: the queue message was deleted.
    expect(first.statusCode).toBe(200);
    expect(refused).toBeGreaterThan(0);
    expect((await table.get(`apply#${id}`))?.state).toBe('held');
    expect(stack.logs.app.entries().some((e) => e.msg === 'could not mark the envelope applied' && e.envelopeId === id)).toBe(true);

    const file = join(stack.dir, 'app-second-audit.jsonl');
    const second = await startAppService(loadAppConfig({ ...stack.env.app, AUDIT_FILE: file }), { logger: captureLogger('app').logger, listen: false });
    try {
      // Not marked yet: no instance can know the record was acknowledged.
      expect((await ack(second, id)).statusCode).toBe(404);

      refusingMarks = false;
      await waitFor(async () => (await table.get(`apply#${id}`))?.state === 'applied', { what: 'the mark written by a later try', timeoutMs: 30_000 });
      expect(stack.logs.app.entries().some((e) => e.msg === 'marked the acknowledged envelope applied on a later try' && e.envelopeId === id)).toBe(true);
      const again = await ack(second, id);
      expect(again.statusCode).toBe(200);
      expect(again.json()).toEqual({ id, acked: true });
      const lines = (await readTrail(file)).filter((l) => l.action === 'inbox.acked' && l.resourceId === id);
      expect(lines.map((l) => (l.details as { copy?: boolean } | undefined)?.copy)).toEqual([true]);
      // And here too.
      expect((await ack(stack.app, id)).statusCode).toBe(200);
    } finally {
      refusingMarks = false;
      await second.stop();
    }
    for (const line of stack.logs.app.lines) expect(line).not.toContain(NAME);
  });
});
