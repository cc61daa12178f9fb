import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { stringAttribute } from '../../../services/core/transport/attributes.ts';
import { CONSOLE_CSP } from '../../../services/core/console/plugin.ts';
import { cookiesOf, csrfOf, openSignIn, postForm, postSignIn, signIn } from '../../helpers/console.ts';
import { startStack, type TestStack } from '../../helpers/stack.ts';
import { waitFor } from '../../helpers/wait.ts';
import { auditFiles, readAudit } from '../../security/helpers.ts';

let stack: TestStack;

beforeAll(async () => {
  const env = { CONSOLE_SAMPLE_SECONDS: '1', AUTH_FAILURE_LIMIT: '3' };
  // The app's sessions end after 3 idle seconds (the idle test); the interface's last long enough for slow steps.
  stack = await startStack({ ifaceEnv: { ...env, CONSOLE_IDLE_TIMEOUT_SECONDS: '120' }, appEnv: { ...env, CONSOLE_IDLE_TIMEOUT_SECONDS: '3' } });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

describe('console sign-in and session', () => {
  it('sends a visitor without a session to the sign-in page, under the strict CSP and never cached', async () => {
    const res = await stack.iface.server.inject({ method: 'GET', url: '/console' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/console/login');
    const login = await stack.iface.server.inject({ method: 'GET', url: '/console/login' });
    expect(login.statusCode).toBe(200);
    expect(login.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(login.headers['cache-control']).toBe('no-store');
    expect(login.body).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=/i);
    expect(login.body).not.toMatch(/https?:\/\//);
  });

  it('signs an admin in: HttpOnly SameSite=Strict session cookie, no Secure on loopback, Secure elsewhere; audited', async () => {
    const res = await postSignIn(stack.app.server, stack.tokens.admin);
    expect(res.statusCode).toBe(303);
    const cookie = cookiesOf(res).get('cr_console')!;
    expect(cookie.header).toMatch(/HttpOnly/);
    expect(cookie.header).toMatch(/SameSite=Strict/);
    expect(cookie.header).not.toMatch(/Secure/);
    const page = await stack.app.server.inject({ method: 'GET', url: '/console', headers: { cookie: `cr_console=${cookie.value}` } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Emergency mode');
    expect(page.body).toContain('id="inbox"');
    // From another machine over plain HTTP the cookies are Secure (and __Host-): a browser would not send them back unencrypted.
    const remote = await stack.app.server.inject({ method: 'GET', url: '/console/login', remoteAddress: '10.1.2.3', headers: { host: 'relay.example' } });
    const secure = cookiesOf(remote).get('__Host-cr_console_login')!;
    expect(secure.header).toMatch(/; Secure/);
    const audit = await readAudit(auditFiles(stack).app);
    expect(audit.some((e) => e.action === 'auth.success' && e.resourceType === 'console' && e.actor === 'admin')).toBe(true);
    expect(audit.some((e) => e.action === 'console.viewed' && e.resourceId === '/console' && e.actor === 'admin')).toBe(true);
  });

  it('refuses a bad credential and a non-admin token, counting them in the failed-authentication limiter', async () => {
    const bad = await postSignIn(stack.iface.server, 'not-a-token');
    expect(bad.statusCode).toBe(401);
    expect(bad.body).toContain('Sign-in failed');
    expect(bad.body).not.toContain('not-a-token');
    expect(cookiesOf(bad).has('cr_console')).toBe(false);
    const reader = await postSignIn(stack.app.server, stack.tokens.reader);
    expect(reader.statusCode).toBe(401);
    const audit = await readAudit(auditFiles(stack).iface);
    expect(audit.some((e) => e.action === 'auth.failure' && e.resourceType === 'console' && e.details?.reason === 'invalid')).toBe(true);
  });

  it('refuses the sign-in form without its CSRF token or from another origin', async () => {
    const form = await openSignIn(stack.app.server);
    const noToken = await postSignIn(stack.app.server, stack.tokens.admin, { cookie: form.cookie, csrf: 'forged' });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json().code).toBe('CR_CONSOLE_CSRF');
    const cross = await stack.app.server.inject({
      method: 'POST',
      url: '/console/login',
      headers: { cookie: form.cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: form.csrf, token: stack.tokens.admin }).toString(),
    });
    expect(cross.statusCode).toBe(403);
  });

  it('a source that keeps failing is refused with 429 before its credential is looked at', async () => {
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    let last = 0;
    for (let i = 0; i < 5; i++) {
      const form = await openSignIn(stack.iface.server);
      const res = await stack.iface.server.inject({ method: 'POST', url: '/console/login', remoteAddress: '10.9.9.9', headers: { ...headers, cookie: form.cookie.replace('cr_console_login', '__Host-cr_console_login'), host: 'relay.example' }, payload: new URLSearchParams({ _csrf: form.csrf, token: `guess-${i}` }).toString() });
      last = res.statusCode;
    }
    expect(last).toBe(429);
  });
});

describe('console actions', () => {
  it('refuses a form without the session CSRF token, and a switch without confirmation', async () => {
    const client = await signIn(stack.iface.server, stack.tokens.admin);
    const forged = await postForm(stack.iface.server, { ...client, csrf: 'x'.repeat(43) }, '/console/emergency', { to: 'on', confirm: 'yes' });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().code).toBe('CR_CONSOLE_CSRF');
    const unconfirmed = await postForm(stack.iface.server, client, '/console/emergency', { to: 'on' });
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.json().code).toBe('CR_CONSOLE_CONFIRMATION_REQUIRED');
    expect(stack.iface.runtime.emergency.active).toBe(false);
  });

  it('switches emergency mode on and off with confirmation, audited with the admin as actor', async () => {
    const client = await signIn(stack.iface.server, stack.tokens.admin);
    const confirm = await stack.iface.server.inject({ method: 'GET', url: '/console/emergency?to=on', headers: { cookie: client.cookie } });
    expect(confirm.body).toContain('I confirm');
    const on = await postForm(stack.iface.server, client, '/console/emergency', { to: 'on', confirm: 'yes' });
    expect(on.statusCode).toBe(303);
    expect(stack.iface.runtime.emergency.active).toBe(true);
    const off = await postForm(stack.iface.server, client, '/console/emergency', { to: 'off', confirm: 'yes' });
    expect(off.statusCode).toBe(303);
    expect(stack.iface.runtime.emergency.active).toBe(false);
    const audit = await readAudit(auditFiles(stack).iface);
    const changes = audit.filter((e) => e.action === 'emergency.changed' && e.actor === 'admin');
    expect(changes.map((e) => e.details?.active)).toEqual([true, false]);
  });

  it('serves the overview as JSON and the audit page, and verifies the trail on request', async () => {
    const client = await signIn(stack.iface.server, stack.tokens.admin);
    const json = await stack.iface.server.inject({ method: 'GET', url: '/console/api/overview', headers: { cookie: client.cookie } });
    expect(json.statusCode).toBe(200);
    const o = json.json<{ queues: Array<{ queue: string; role: string }>; audit: { seq: number } }>();
    expect(o.audit.seq).toBeGreaterThan(0);
    const verified = await postForm(stack.iface.server, client, '/console/audit/verify', {});
    expect(verified.statusCode).toBe(303);
    const page = await stack.iface.server.inject({ method: 'GET', url: '/console', headers: { cookie: client.cookie } });
    expect(page.body).toContain('verified');
    const auditPage = await stack.iface.server.inject({ method: 'GET', url: '/console/audit', headers: { cookie: client.cookie } });
    expect(auditPage.body).toContain('audit.verified');
    expect(csrfOf(auditPage.body)).toBe(client.csrf);
  });

  it('signs out: the session is gone server-side', async () => {
    const client = await signIn(stack.app.server, stack.tokens.admin);
    const out = await postForm(stack.app.server, client, '/console/logout', {});
    expect(out.statusCode).toBe(303);
    const after = await stack.app.server.inject({ method: 'GET', url: '/console/api/overview', headers: { cookie: client.cookie } });
    expect(after.statusCode).toBe(401);
    expect(after.json().code).toBe('CR_CONSOLE_SIGNED_OUT');
  });

  it('signs an idle session out after CONSOLE_IDLE_TIMEOUT_SECONDS, and audits the logoff', async () => {
    const client = await signIn(stack.app.server, stack.tokens.admin);
    // The session check does not count as activity, so polling it cannot keep the session alive.
    await waitFor(async () => (await stack.app.server.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: client.cookie } })).statusCode === 401, { timeoutMs: 30_000, intervalMs: 200, what: 'idle logoff' });
    const page = await stack.app.server.inject({ method: 'GET', url: '/console', headers: { cookie: client.cookie } });
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toMatch(/^\/console\/login/);
    const audit = await readAudit(auditFiles(stack).app);
    expect(audit.some((e) => e.action === 'console.signed-out' && e.details?.reason === 'idle')).toBe(true);
  });
});

describe('console DLQ and quarantine pages', () => {
  it('lists a tampered message in the app\'s quarantine with its reason, metadata only', async () => {
    const envelopeId = randomUUID();
    await stack.sqs.client.send(
      new SendMessageCommand({
        QueueUrl: stack.queues['interface-to-app'].url,
        MessageBody: 'tampered: not an OpenPGP message',
        MessageAttributes: { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(envelopeId), 'cr-signer': stringAttribute('A'.repeat(40)) },
      }),
    );
    const page = await waitFor(
      async () => {
        // A fresh session each time: the app's sessions idle out after 3 s, and a slow poll must not end the test's.
        const client = await signIn(stack.app.server, stack.tokens.admin);
        const res = await stack.app.server.inject({ method: 'GET', url: '/console/quarantine', headers: { cookie: client.cookie } });
        return res.body.includes(envelopeId) ? res : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: 'the tampered message in quarantine' },
    );
    expect(page.body).toContain('CR_ENVELOPE_NOT_OPENPGP');
    expect(page.body).not.toContain('tampered:');
  });

  it('redrives a dead-lettered chart update after a dry run and confirmation: it is delivered, one audit line per message', async () => {
    const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/fhir+json', body: '{"resourceType":"Observation"}' });
    const sealed = await seal(envelope, stack.keys.app.own, stack.keys.app.peers);
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['app-to-interface'].dlqUrl, MessageBody: sealed.body, MessageAttributes: sealed.attributes }));
    const client = await signIn(stack.iface.server, stack.tokens.admin);
    const page = await stack.iface.server.inject({ method: 'GET', url: '/console/dlq', headers: { cookie: client.cookie } });
    expect(page.body).toContain(envelope.id);
    const dry = await postForm(stack.iface.server, client, '/console/held/dlq/app-to-interface', { action: 'redrive' });
    expect(dry.statusCode).toBe(200);
    expect(dry.body).toContain('would act on');
    expect(stack.sink.deliveries.has(envelope.id)).toBe(false);
    const done = await postForm(stack.iface.server, client, '/console/held/dlq/app-to-interface', { action: 'redrive', confirm: 'yes' });
    expect(done.body).toMatch(/Redrive: <strong>1<\/strong> done/);
    await waitFor(() => stack.sink.deliveries.has(envelope.id), { timeoutMs: 30_000, what: 'the redriven chart update delivered' });
    const audit = await readAudit(auditFiles(stack).iface);
    expect(audit.filter((e) => e.action === 'message.redriven' && e.actor === 'admin' && e.resourceId === envelope.id)).toHaveLength(1);
  });
});
