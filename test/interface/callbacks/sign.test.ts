// Signing checked against implementations that are not the relay's: the Standard Webhooks
// reference library (npm `standardwebhooks`) and a few lines of Python's standard library.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { callbackPayload, buildCallbackJob } from '../../../services/interface/callbacks/job.ts';
import { readCallbackSecrets } from '../../../services/interface/callbacks/secrets.ts';
import { signWebhook } from '../../../services/interface/callbacks/sign.ts';
import { newWhsec } from '../../helpers/webhookReceiver.ts';

const PYTHON_VERIFY = `
import base64, hashlib, hmac, json, sys
for d in json.load(sys.stdin):
    key = base64.b64decode(d["secret"][len("whsec_"):])
    content = (d["id"] + "." + d["timestamp"] + "." + d["body"]).encode()
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    ok = any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in d["signature"].split(" "))
    print("valid" if ok else "invalid")
`;

interface PythonCase {
  secret: string;
  headers: Record<string, string>;
  body: string;
}

/** Runs every case through one Python process (starting one is slow on a loaded machine). */
function pythonVerify(cases: PythonCase[]): string[] {
  const input = JSON.stringify(cases.map(({ secret, headers, body }) => ({ secret, id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], signature: headers['webhook-signature'], body })));
  return execFileSync('python3', ['-c', PYTHON_VERIFY], { input, encoding: 'utf8' }).trim().split('\n');
}

const job = buildCallbackJob({ submissionId: '0192f0a4-1111-7aaa-8bbb-0123456789ab', partner: 'acme-health', status: 'dead-lettered', reasonCode: 'CR_EMR_HTTP_500', at: '2026-11-30T07:00:00.000Z' });
const body = callbackPayload(job);

describe('Standard Webhooks signing', () => {
  it('is accepted by the reference library and by an independent Python verifier', () => {
    const secret = newWhsec();
    const keys = readCallbackSecrets('mem', () => `${secret}\n`).keys();
    const headers = signWebhook({ id: job.webhookId, timestamp: Date.now() / 1000, body, keys });
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(pythonVerify([{ secret, headers: { ...headers }, body }])).toEqual(['valid']);
  });

  it('matches the reference library byte for byte for the same id, time and body', () => {
    const secret = newWhsec();
    const keys = readCallbackSecrets('mem', () => secret).keys();
    const at = new Date('2026-11-30T07:00:00Z');
    const ours = signWebhook({ id: 'msg_x', timestamp: at.getTime() / 1000, body, keys });
    expect(ours['webhook-signature']).toBe(new Webhook(secret).sign('msg_x', at, body));
    expect(ours['webhook-timestamp']).toBe(String(at.getTime() / 1000));
  });

  it('signs with every secret during a rotation: a receiver that knows only the old or only the new one accepts it', () => {
    const [oldSecret, newSecret] = [newWhsec(), newWhsec()];
    const keys = readCallbackSecrets('mem', () => `# rotation\n${oldSecret}\n\n${newSecret}\n`).keys();
    const headers = signWebhook({ id: job.webhookId, timestamp: Date.now() / 1000, body, keys });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    for (const secret of [oldSecret, newSecret]) expect(() => new Webhook(secret).verify(body, { ...headers })).not.toThrow();
    expect(pythonVerify([oldSecret, newSecret].map((secret) => ({ secret, headers: { ...headers }, body })))).toEqual(['valid', 'valid']);
  });

  it('is refused for a changed body, a changed id, or another secret (the verifiers are not rubber stamps)', () => {
    const secret = newWhsec();
    const keys = readCallbackSecrets('mem', () => secret).keys();
    const headers = signWebhook({ id: job.webhookId, timestamp: Date.now() / 1000, body, keys });
    const tampered = body.replace('dead-lettered', 'acknowledged');
    expect(() => new Webhook(secret).verify(tampered, { ...headers })).toThrow();
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_other' })).toThrow();
    expect(() => new Webhook(newWhsec()).verify(body, { ...headers })).toThrow();
    expect(pythonVerify([
      { secret, headers: { ...headers }, body: tampered },
      { secret, headers: { ...headers, 'webhook-id': 'msg_other' }, body },
      { secret: newWhsec(), headers: { ...headers }, body },
    ])).toEqual(['invalid', 'invalid', 'invalid']);
  });

  it('carries ids, the status, the reason code, the time and a type: nothing else', () => {
    expect(JSON.parse(body)).toEqual({
      type: 'submission.dead-lettered',
      timestamp: '2026-11-30T07:00:00.000Z',
      data: { submissionId: '0192f0a4-1111-7aaa-8bbb-0123456789ab', status: 'dead-lettered', reasonCode: 'CR_EMR_HTTP_500' },
    });
    expect(job.webhookId).toBe('msg_0192f0a4-1111-7aaa-8bbb-0123456789ab_dead-lettered');
  });

  it('refuses a status event that carries anything but ids and codes (a reason that is not a CR_ code)', () => {
    expect(() => buildCallbackJob({ submissionId: '0192f0a4-1111-7aaa-8bbb-0123456789ab', partner: 'acme-health', status: 'rejected', reasonCode: 'Jane Doe DOB 1970-01-01', at: '2026-11-30T07:00:00Z' })).toThrow(
      /reasonCode as a CR_\* code/,
    );
  });

  it('never shows a secret when the key set is printed or serialised', () => {
    const secret = newWhsec();
    const secrets = readCallbackSecrets('mem', () => secret);
    const key = Buffer.from(secret.slice(6), 'base64').toString('base64');
    for (const text of [JSON.stringify({ secrets }), String(secrets), `${secrets}`]) {
      expect(text).not.toContain(secret.slice(6));
      expect(text).not.toContain(key);
    }
  });
});
