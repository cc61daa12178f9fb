import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadAppConfig } from '../../../services/app/config.ts';
import { startAppService } from '../../../services/app/service.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { startStack, type TestStack } from '../../helpers/stack.ts';
import type { AuditEntry } from '../../../services/core/audit/chain.ts';
import { readTrail } from '../../helpers/trail.ts';
import { waitFor } from '../../helpers/wait.ts';

// A repeated acknowledgement answers as the first did, and writes its line again, marked copy:
// the client that lost the first answer, or whose ack's line a crash or a failed write cut off,
// retries and the acknowledgement has its line.

const NAME = 'Ackagainperson';
const fhir = (n: number): string => JSON.stringify({ resourceType: 'Patient', id: `ack-${n}`, name: [{ family: NAME, given: ['Wren'] }] });

let stack: TestStack;
let submitted = 0;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function held(): Promise<string> {
  const res = await stack.iface.server.inject({
    method: 'POST',
    url: '/v1/submissions',
    headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
    payload: fhir(++submitted),
  });
  expect(res.statusCode).toBe(202);
  const id = res.json().id as string;
  await waitFor(() => stack.app.inbox.get(id), { what: 'record held' });
  return id;
}

const ack = (app: Pick<TestStack['app'], 'server'>, id: string) =>
  app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${stack.tokens.reader}` }, remoteAddress: '192.0.2.31' });

async function ackLines(file: string, id: string): Promise<AuditEntry[]> {
  return (await readTrail(file)).filter((l) => l.action === 'inbox.acked' && l.resourceId === id);
}
const isCopy = (l: AuditEntry): boolean => (l.details as { copy?: boolean } | undefined)?.copy === true;

describe('acknowledging a record again', () => {
  it('after its 200, here and at a second app instance: 200 again, and inbox.acked again, marked copy; the record is not shown again', async () => {
    const id = await held();
    const first = await ack(stack.app, id);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ id, acked: true });
    const again = await ack(stack.app, id);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ id, acked: true });
    const lines = await ackLines(stack.env.app.AUDIT_FILE!, id);
    expect(lines.map((l) => [l.outcome, isCopy(l)])).toEqual([
      ['success', false],
      ['success', true],
    ]);
    expect(lines[1]).toMatchObject({ actor: 'reader', resourceType: 'inbox-record', sourceIp: '192.0.2.31' });

    // Another instance reads the same shared state table: the id is applied there too.
    const file = join(stack.dir, 'app-second-audit.jsonl');
    const second = await startAppService(loadAppConfig({ ...stack.env.app, AUDIT_FILE: file }), { logger: captureLogger('app').logger, listen: false });
    try {
      const elsewhere = await ack(second, id);
      expect(elsewhere.statusCode).toBe(200);
      expect(elsewhere.json()).toEqual({ id, acked: true });
      expect((await ackLines(file, id)).map(isCopy)).toEqual([true]);
      expect(second.inbox.get(id)).toBeUndefined();
    } finally {
      await second.stop();
    }
    expect(stack.app.inbox.get(id)).toBeUndefined();
    for (const l of await readTrail(stack.env.app.AUDIT_FILE!)) expect(JSON.stringify(l)).not.toContain(NAME);
  });

  it('twice at once at the same instance: both 200 once the first is final, one line and one copy', async () => {
    const id = await held();
    const [a, b] = await Promise.all([ack(stack.app, id), ack(stack.app, id)]);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect((await ackLines(stack.env.app.AUDIT_FILE!, id)).map(isCopy).sort()).toEqual([false, true]);
  });

  it('whose first line failed after the id was marked applied (a crash or a failed write between): the retry answers 200 and writes the line, marked copy', async () => {
    const id = await held();
    const audit = stack.app.runtime.audit;
    // The trail's own record (the runtime's audit is a proxy that watches failures and calls it).
    const real = Object.getOwnPropertyDescriptor(audit, 'record')!.value as typeof audit.record;
    const spy = vi.spyOn(audit, 'record').mockImplementation(async (event) => {
      if (event.action === 'inbox.acked' && event.resourceId === id && spy.mock.calls.filter(([e]) => e.action === 'inbox.acked').length === 1) {
        throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      }
      return real(event);
    });
    try {
      const first = await ack(stack.app, id);
      expect(first.statusCode).toBe(500);
      expect(first.body).not.toContain(NAME);
      expect(await ackLines(stack.env.app.AUDIT_FILE!, id)).toEqual([]);
      // The ack itself went through before the line: the record left the inbox and its id is applied.
      expect(stack.app.inbox.get(id)).toBeUndefined();
      const retry = await ack(stack.app, id);
      expect(retry.statusCode).toBe(200);
      expect(retry.json()).toEqual({ id, acked: true });
    } finally {
      spy.mockRestore();
    }
    const lines = await ackLines(stack.env.app.AUDIT_FILE!, id);
    expect(lines.map((l) => [l.outcome, isCopy(l)])).toEqual([['success', true]]);
  });

  it('an id never acknowledged is 404 and writes nothing; a state table that cannot be read is 503 with Retry-After, never a guess', async () => {
    const never = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    const missing = await ack(stack.app, never);
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'CR_HTTP_NOT_FOUND' });
    expect(await ackLines(stack.env.app.AUDIT_FILE!, never)).toEqual([]);

    const id = await held();
    expect((await ack(stack.app, id)).statusCode).toBe(200);
    const state = stack.app.runtime.state;
    const spy = vi.spyOn(state, 'get').mockRejectedValue(Object.assign(new Error('connect ECONNREFUSED'), { name: 'TimeoutError' }));
    try {
      const unreadable = await ack(stack.app, id);
      expect(unreadable.statusCode).toBe(503);
      expect(unreadable.headers['retry-after']).toBe('5');
      expect(unreadable.json()).toMatchObject({ code: 'CR_HTTP_UNAVAILABLE' });
    } finally {
      spy.mockRestore();
    }
    // Only the first ack's line: the unreadable lookup wrote none.
    expect((await ackLines(stack.env.app.AUDIT_FILE!, id)).map(isCopy)).toEqual([false]);
  });
});
