import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedactionHandler } from '../../../services/app/sms/redactionWorker.ts';
import { createSmsSender, STATUS_WEBHOOK_PATH } from '../../../services/app/sms/send.ts';
import { runSweep } from '../../../services/app/sms/sweep.ts';
import { statusWebhook } from '../../../services/app/sms/webhook.ts';
import { captureLogger, fastRetry, memoryAudit, memoryQueue, startWorld, waitFor, keylessClaims, type SmsWorld } from './helpers.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';

let world: SmsWorld | undefined;
afterEach(async () => {
  await world?.fake.stop();
  world = undefined;
});

const NAME = 'Philippa Quenby-Marchetti';
const PHONE = '+15557654321';
const BODY = `Hi ${NAME}, your HIV test result is ready`;

describe('no PHI in logs or audit', () => {
  it('keeps the name, the number and the body out of every log line and audit event, errors included', async () => {
    world = await startWorld({ stepMs: 10 }, { sentGraceSeconds: 0 });
    const log = captureLogger();
    const audit = memoryAudit();
    const q = memoryQueue();
    const app = Fastify({ loggerInstance: log.logger });
    await app.register(statusWebhook, { config: world.config, enqueue: q.enqueue, logger: log.logger, audit });
    await app.listen({ port: world.port, host: '127.0.0.1' });
    let sid = '';
    try {
      const settled = memoryApplyLedger();
      const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled, enqueue: q.enqueue, audit, logger: log.logger, retry: fastRetry });
      const handler = createRedactionHandler({ config: world.config, api: world.api, audit, audited: memoryApplyLedger(), enqueue: q.enqueue, settled, claims: keylessClaims, logger: log.logger, retry: fastRetry });
      // An invalid send, a refused send and a good one.
      await expect(send({ to: PHONE.slice(1), body: BODY })).rejects.toThrow();
      world.fake.faults.inject({ count: 1, status: 400, nonJson: false, method: 'POST' });
      await expect(send({ to: PHONE, body: BODY })).rejects.toThrow();
      ({ sid } = await send({ to: PHONE, body: BODY, mediaUrls: ['https://m.example/chart.jpg'] }));
      // A forged callback carrying the PHI.
      const forged = await fetch(world.config.publicBaseUrl + STATUS_WEBHOOK_PATH, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-signalwire-signature': 'forged' },
        body: new URLSearchParams({ MessageSid: sid, MessageStatus: 'delivered', Body: BODY, To: PHONE }).toString(),
      });
      expect(forged.status).toBe(403);
      await waitFor(() => q.jobs.some((j) => j.job.trigger === 'status' && j.job.status === 'delivered'), 5000, 'status job');
      // Worker through a transient failure, then to the end.
      world.fake.faults.inject({ count: 4, status: 502, nonJson: true });
      await waitFor(async () => (await q.runDue(handler, 0)).some((r) => r.status === 'done'), 5000, 'redaction');
      expect(world.fake.message(sid)!.body).toBe('');
      // A sweep over a second, unredacted message.
      world.fake.seed({ to: PHONE, body: BODY, mediaUrls: ['https://m.example/x.jpg'] });
      const swept = await runSweep({ api: world.api, hmacKey: world.config.hmacKey, audit, logger: log.logger, retry: fastRetry }, { mode: 'redact', sentGraceSeconds: 0 });
      expect(swept.counts.redacted).toBe(1);
      await world.fake.callbacks.idle();
    } finally {
      await app.close();
    }
    const lines = log.text();
    const auditText = JSON.stringify(audit.events);
    expect(lines.length).toBeGreaterThan(0);
    expect(audit.events.map((e) => e.action)).toEqual(expect.arrayContaining(['sms.sent', 'auth.failure', 'sms.redacted']));
    for (const secret of [NAME, 'Quenby', 'HIV test', PHONE, PHONE.slice(1), '7654321', world.config.apiToken, world.config.signingKey]) {
      expect(lines).not.toContain(secret);
      expect(auditText).not.toContain(secret);
    }
    // Every line is JSON, and the sid only appears hashed.
    expect(log.lines().length).toBeGreaterThan(5);
    expect(lines).not.toContain(sid);
    expect(auditText).not.toContain(sid);
  });
});
