import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { stringAttribute } from '../../services/core/transport/attributes.ts';
import { launchChromium } from '../helpers/browser.ts';
import { fifoSendIds } from '../helpers/sqs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

// The console driven as an operator would, in the system's headless Chromium. With
// CARE_RELAY_CONSOLE_SCREENSHOTS=<folder> the screenshots docs/operations.md shows are written there.
const SHOTS = process.env.CARE_RELAY_CONSOLE_SCREENSHOTS;
const IDLE_SECONDS = 8;

let stack: TestStack;
let browser: Browser;
let shotsDir: string;
let appUrl: string;
let ifaceUrl: string;
/** Requests the pages made to anything but the console's own origin, and CSP violations they reported. */
const foreign: string[] = [];
const violations: string[] = [];

async function listen(server: FastifyInstance): Promise<string> {
  await server.listen({ port: 0, host: '127.0.0.1' });
  const address = server.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

async function newPage(context: BrowserContext, origin: string): Promise<Page> {
  const page = await context.newPage();
  // Condition waits, with deadlines sized for a loaded 2-core machine.
  page.setDefaultTimeout(60_000);
  page.setDefaultNavigationTimeout(60_000);
  page.on('request', (r) => {
    if (!r.url().startsWith(origin)) foreign.push(r.url());
  });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/console`);
  await page.waitForURL(/\/console\/login/);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${base}/console`), page.click('#signin')]);
}

/** Reloads `page` until `selector` is on it. */
async function reloadUntil(page: Page, selector: string, what: string): Promise<void> {
  await waitFor(
    async () => {
      await page.reload();
      return (await page.locator(selector).count()) > 0;
    },
    { timeoutMs: 90_000, intervalMs: 500, what },
  );
}

beforeAll(async () => {
  const env = { CONSOLE_SAMPLE_SECONDS: '1' };
  stack = await startStack({ ifaceEnv: { ...env, CONSOLE_IDLE_TIMEOUT_SECONDS: '600' }, appEnv: { ...env, CONSOLE_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS) } });
  [appUrl, ifaceUrl] = [await listen(stack.app.server), await listen(stack.iface.server)];
  shotsDir = SHOTS ? resolve(SHOTS) : await mkdtemp(join(tmpdir(), 'cr-console-shots-'));
  await mkdir(shotsDir, { recursive: true });
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  if (!SHOTS && shotsDir) await rm(shotsDir, { recursive: true, force: true });
}, 120_000);

describe('the console in a real browser', () => {
  it('app: a bad credential fails; an admin signs in, sees a tampered message in quarantine, and is signed out when idle', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await newPage(context, appUrl);

    await page.goto(`${appUrl}/console`);
    await page.waitForURL(/\/console\/login/);
    await page.fill('#token', 'not-an-admin-token');
    await page.click('#signin');
    expect(await page.locator('#notice').textContent()).toContain('Sign-in failed');
    expect(await page.locator('#actor').count()).toBe(0);
    await shot(page, 'console-signin-failed');

    await page.fill('#token', stack.tokens.admin);
    await Promise.all([page.waitForURL(`${appUrl}/console`), page.click('#signin')]);
    expect(await page.locator('#actor').textContent()).toBe('admin');
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'cr_console');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

    const envelopeId = randomUUID();
    await stack.sqs.client.send(
      new SendMessageCommand({
        QueueUrl: stack.queues['interface-to-app'].url,
        MessageBody: 'tampered in transit: no OpenPGP message',
        MessageAttributes: { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(envelopeId), 'cr-signer': stringAttribute('B'.repeat(40)) },
        ...fifoSendIds(stack.sqs, envelopeId),
      }),
    );
    await page.click('a[href="/console/quarantine"]');
    await reloadUntil(page, `tr[data-envelope-id="${envelopeId}"]`, 'the tampered message in quarantine');
    expect(await page.locator(`tr[data-envelope-id="${envelopeId}"]`).textContent()).toContain('CR_ENVELOPE_NOT_OPENPGP');
    expect(await page.content()).not.toContain('tampered in transit');
    await shot(page, 'console-quarantine');

    await page.click('a[href="/console"]');
    await page.locator('#inbox').waitFor();
    // Left alone, the page notices the server ended the session and goes to the sign-in page.
    await page.waitForURL(/\/console\/login\?ended=idle/, { timeout: 90_000 });
    expect(await page.locator('#notice').textContent()).toContain('idle');
    await shot(page, 'console-signed-out-idle');
    await page.goto(`${appUrl}/console`);
    await page.waitForURL(/\/console\/login/);
    await context.close();
  });

  it('interface: an admin redrives a dead-lettered chart update and sees it delivered, then switches emergency mode on and off', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await newPage(context, ifaceUrl);
    await signIn(page, ifaceUrl, stack.tokens.admin);
    // The chart fills in as samples arrive (one a second here).
    await waitFor(async () => (await page.reload(), (await page.locator('svg polyline').count()) > 0), { timeoutMs: 60_000, intervalMs: 1000, what: 'the depth chart' });
    await shot(page, 'console-overview');

    const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/fhir+json', body: '{"resourceType":"Observation","status":"final"}' });
    const sealed = await seal(envelope, stack.keys.app.own, stack.keys.app.peers);
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['app-to-interface'].dlqUrl, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(stack.sqs, 'app-to-interface') }));
    await page.click('a[href="/console/dlq"]');
    const row = `tr[data-envelope-id="${envelope.id}"]`;
    await reloadUntil(page, row, 'the dead-lettered chart update on the DLQ page');
    await shot(page, 'console-dlq');
    await page.check(`${row} input[type="checkbox"]`);
    await page.click('form:has(table[data-queue="app-to-interface"]) button.redrive');
    await page.locator('#confirm-action').waitFor();
    expect(await page.locator('#summary').textContent()).toContain('would act on 1');
    await shot(page, 'console-redrive-confirm');
    await page.check('#confirm');
    await page.click('#confirm-action');
    await page.locator('#back').waitFor();
    expect(await page.locator('#summary').textContent()).toMatch(/Redrive: 1 done/);

    await waitFor(() => stack.sink.deliveries.has(envelope.id), { timeoutMs: 90_000, what: 'the redriven chart update at the EMR' });
    await page.goto(`${ifaceUrl}/console/audit`);
    await reloadUntil(page, `tr[data-action="message.delivered"]:has-text("${envelope.id}")`, 'the delivery on the audit page');
    expect(await page.locator(`tr[data-action="message.redriven"]:has-text("${envelope.id}")`).count()).toBe(1);
    await shot(page, 'console-audit');

    await page.goto(`${ifaceUrl}/console`);
    await page.click('#emergency-switch');
    await page.locator('#confirm-switch').waitFor();
    await shot(page, 'console-emergency-confirm');
    await page.check('#confirm');
    await Promise.all([page.waitForURL(`${ifaceUrl}/console`), page.click('#confirm-switch')]);
    expect(await page.locator('#emergency-state').textContent()).toBe('ON');
    expect(stack.iface.runtime.emergency.active).toBe(true);
    await shot(page, 'console-emergency-on');
    await page.click('#emergency-switch');
    await page.check('#confirm');
    await Promise.all([page.waitForURL(`${ifaceUrl}/console`), page.click('#confirm-switch')]);
    expect(await page.locator('#emergency-state').textContent()).toBe('off');
    expect(stack.iface.runtime.emergency.active).toBe(false);
    await context.close();
  });

  it('loaded nothing from another origin and broke no Content-Security-Policy rule', () => {
    expect(foreign).toEqual([]);
    expect(violations).toEqual([]);
  });
});
