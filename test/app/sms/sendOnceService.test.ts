import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashId } from '../../../services/core/log/logger.ts';
import { readTrail } from '../../helpers/trail.ts';
import { bearer, startSmsStack, type SmsStack } from '../../security/helpers.ts';

// The Idempotency-Key of POST /v1/messages through the app service, as an application uses it.

let world: SmsStack;
beforeAll(async () => {
  world = await startSmsStack();
});
afterAll(async () => {
  await world?.stop();
});

const TO = '+15551230091';
const post = (key: string | undefined, body: string) =>
  world.stack.app.server.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...bearer(world.stack.tokens.messenger), ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload: { to: TO, body },
  });

describe('POST /v1/messages with an Idempotency-Key', () => {
  it('a retry answers 202 with the same sid and sends nothing; another body is 409; a malformed key is 400', async () => {
    const key = `appt-reminder-${Date.now()}`;
    const first = await post(key, 'Your appointment is tomorrow at 9');
    expect(first.statusCode, first.body).toBe(202);
    const again = await post(key, 'Your appointment is tomorrow at 9');
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    const sid = first.json<{ sid: string }>().sid;
    expect([...world.fake.store.messages.values()].filter((m) => m.to === TO)).toHaveLength(1);

    const reused = await post(key, 'Your appointment is tomorrow at 10');
    expect(reused.statusCode).toBe(409);
    expect(reused.headers['content-type']).toContain('application/problem+json');
    expect(reused.json()).toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_REUSED' });
    expect(reused.body).not.toContain('tomorrow');
    expect((await post('x'.repeat(201), 'hi')).statusCode).toBe(400);
    expect((await post('two words', 'hi')).json()).toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_INVALID' });
    expect([...world.fake.store.messages.values()].filter((m) => m.to === TO)).toHaveLength(1);

    const trail = (await readTrail(world.stack.env.app.AUDIT_FILE!)).filter((l) => l.action === 'sms.sent' && l.resourceId === hashId(world.stack.env.app.HMAC_KEY!, sid));
    expect(trail.map((l) => [l.outcome, l.actor, l.details?.copy ?? false])).toEqual([
      ['success', 'messenger', false],
      ['success', 'messenger', true],
    ]);
  });
});
