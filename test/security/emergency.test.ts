import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { auditFiles, bearer, expectProblem, readAudit, startSmsStack, submit, type SmsStack } from './helpers.ts';

const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'emergency test' } });
const HL7 = 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|11|P|2.5\r';

let world: SmsStack;

beforeAll(async () => {
  world = await startSmsStack({ ifaceEnv: { EMERGENCY_MODE: 'true' }, appEnv: { EMERGENCY_MODE: 'true' } });
});
afterAll(async () => {
  await world?.stop();
});

function setEmergency(server: FastifyInstance, active: boolean, remoteAddress: string) {
  return server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: bearer(world.stack.tokens.admin), payload: { active }, remoteAddress });
}

/** Visible + in-flight messages of a queue, as SQS counts them. */
async function queued(url: string): Promise<{ visible: number; inFlight: number }> {
  const r = await world.stack.sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return { visible: Number(r.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(r.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

function expectEmergency(res: Awaited<ReturnType<FastifyInstance['inject']>>): void {
  expectProblem(res, 503, 'CR_EMERGENCY_MODE');
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
}

describe('emergency mode', () => {
  it('EMERGENCY_MODE=true at start: intake, inbox, chart updates and SMS are refused with 503 + Retry-After, consumers are paused, and the start is audited', async () => {
    const { iface, app, tokens } = world.stack;
    expectEmergency(await submit(world.stack, FHIR));
    expectEmergency(await app.server.inject({ method: 'GET', url: '/v1/inbox', headers: bearer(tokens.reader) }));
    expectEmergency(await app.server.inject({ method: 'GET', url: '/v1/inbox/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', headers: bearer(tokens.reader) }));
    expectEmergency(await app.server.inject({ method: 'POST', url: '/v1/inbox/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/ack', headers: bearer(tokens.reader) }));
    expectEmergency(await app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(tokens.writer), 'content-type': 'application/hl7-v2' }, payload: HL7 }));
    expectEmergency(await app.server.inject({ method: 'POST', url: '/v1/messages', headers: bearer(tokens.messenger), payload: { to: '+15551230002', body: 'Reminder' } }));
    expect(world.fake.store.messages.size).toBe(0);
    // Authentication still comes first: no token, no information about the mode.
    expectProblem(await app.server.inject({ method: 'GET', url: '/v1/inbox' }), 401, 'CR_AUTH_MISSING');
    expect(iface.consumer.health().paused).toBe(true);
    expect(app.consumers.every((c) => c.health().paused)).toBe(true);
    expect((await app.server.inject({ method: 'GET', url: '/v1/admin/emergency', headers: bearer(tokens.admin) })).json()).toEqual({ active: true });
    const files = auditFiles(world.stack);
    for (const file of [files.iface, files.app]) {
      expect((await readAudit(file)).find((l) => l.action === 'emergency.changed')).toMatchObject({ actor: 'config', outcome: 'success', resourceType: 'service', details: { active: true } });
    }
  });

  it('a submission queued while the app is in emergency mode stays in SQS, not in the inbox; switching off delivers it: nothing lost', async () => {
    const { iface, app, tokens, queues } = world.stack;
    expect((await setEmergency(iface.server, false, '192.0.2.50')).json()).toEqual({ active: false });
    expect(iface.consumer.health().paused).toBe(false);
    const res = await submit(world.stack, FHIR);
    expect(res.statusCode).toBe(202);
    const { id } = res.json<{ id: string }>();
    await waitFor(async () => (await queued(queues['interface-to-app'].url)).visible === 1, { what: 'message waiting in interface-to-app' });
    expect(app.inbox.get(id)).toBeUndefined();
    expect(app.inbox.size).toBe(0);
    expectEmergency(await app.server.inject({ method: 'GET', url: `/v1/inbox/${id}`, headers: bearer(tokens.reader) }));
    // Still there, still visible: the paused consumer never took it.
    expect(await queued(queues['interface-to-app'].url)).toEqual({ visible: 1, inFlight: 0 });

    expect((await setEmergency(app.server, false, '192.0.2.51')).json()).toEqual({ active: false });
    await waitFor(() => app.inbox.get(id), { what: 'queued submission in the inbox after switching off' });
    const read = await app.server.inject({ method: 'GET', url: `/v1/inbox/${id}`, headers: bearer(tokens.reader) });
    expect(read.statusCode).toBe(200);
    expect(read.body).toBe(FHIR);
    expect((await app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: bearer(tokens.reader) })).statusCode).toBe(200);
    await waitFor(async () => {
      const q = await queued(queues['interface-to-app'].url);
      return q.visible === 0 && q.inFlight === 0;
    }, { what: 'message deleted after ack' });
  });

  it('the admin route switches the interface: intake 503, a queued chart update waits in SQS, then reaches the EMR once when switched off', async () => {
    const { iface, app, tokens, queues, sink } = world.stack;
    expect((await setEmergency(iface.server, true, '192.0.2.52')).json()).toEqual({ active: true });
    expect(iface.consumer.health().paused).toBe(true);
    expectEmergency(await submit(world.stack, FHIR));
    const res = await app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(tokens.writer), 'content-type': 'application/hl7-v2' }, payload: HL7 });
    expect(res.statusCode).toBe(202);
    const { id } = res.json<{ id: string }>();
    // An aborted long poll may already have taken it (in flight until its visibility timeout): still in SQS either way.
    await waitFor(async () => {
      const q = await queued(queues['app-to-interface'].url);
      return q.visible + q.inFlight === 1;
    }, { what: 'chart update waiting in app-to-interface' });
    expect(sink.deliveries.has(id)).toBe(false);
    expect(iface.consumer.inFlightCount).toBe(0);

    expect((await setEmergency(iface.server, false, '192.0.2.53')).json()).toEqual({ active: false });
    const delivery = await waitFor(() => sink.deliveries.get(id), { what: 'EMR delivery after switching off' });
    expect(delivery.attempts).toBe(1);
    expect(delivery.body.toString('utf8')).toBe(HL7);

    const lines = await readAudit(auditFiles(world.stack).iface);
    const changes = lines.filter((l) => l.action === 'emergency.changed' && l.actor === 'admin');
    expect(changes.map((l) => [l.sourceIp, l.details?.active])).toEqual([
      ['192.0.2.50', false],
      ['192.0.2.52', true],
      ['192.0.2.53', false],
    ]);
    const appLines = await readAudit(auditFiles(world.stack).app);
    expect(appLines.find((l) => l.action === 'emergency.changed' && l.actor === 'admin')).toMatchObject({ sourceIp: '192.0.2.51', details: { active: false, changed: true } });
  });

  it('refuses a malformed switch request (400 problem) and leaves the mode as it was', async () => {
    const { app, tokens } = world.stack;
    const bad = await app.server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: { ...bearer(tokens.admin), 'content-type': 'application/json' }, payload: '{"active": tru' });
    expectProblem(bad, 400, 'CR_HTTP_MALFORMED_BODY');
    expectProblem(await app.server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: bearer(tokens.admin), payload: { active: 'yes' } }), 400, 'CR_HTTP_VALIDATION');
    expect((await app.server.inject({ method: 'GET', url: '/v1/admin/emergency', headers: bearer(tokens.admin) })).json()).toEqual({ active: false });
  });
});
