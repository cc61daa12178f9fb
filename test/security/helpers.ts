import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { AuditEntry } from '../../services/core/audit/chain.ts';
import { PROBLEM_TYPE_BASE } from '../../services/core/errors/relayError.ts';
import { startFakeSignalWire, type FakeSignalWire } from '../../services/devtools/signalwire/index.ts';
import { startStack, type StackOptions, type TestStack } from '../helpers/stack.ts';
import { freePort } from '../helpers/processes.ts';

/** A free loopback port (so PUBLIC_BASE_URL is known before the server starts). */
export { freePort };

/** One line of an audit trail as the services wrote it. */
export type AuditLine = AuditEntry;

/** Parses an audit trail file (JSON lines) as written to disk. */
export async function readAudit(file: string): Promise<AuditLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as AuditLine);
}

/** The audit files of a stack. */
export function auditFiles(stack: TestStack): { iface: string; app: string } {
  return { iface: join(stack.dir, 'interface-audit.jsonl'), app: join(stack.dir, 'app-audit.jsonl') };
}

/** Both audit trails of a stack, parsed. */
export async function readStackAudit(stack: TestStack): Promise<{ iface: AuditLine[]; app: AuditLine[] }> {
  const files = auditFiles(stack);
  return { iface: await readAudit(files.iface), app: await readAudit(files.app) };
}

/** The problem `type` URI of a code. */
export function problemType(code: string): string {
  return PROBLEM_TYPE_BASE + code.toLowerCase().replace(/^cr_/, '').replaceAll('_', '-');
}

/** Asserts `res` is an RFC 9457 problem with `status`, the stable type of its code (and `code` when given). */
export function expectProblem(res: LightMyRequestResponse, status: number, code?: string): { type: string; code: string; status: number; title: string; detail: string } {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const doc = JSON.parse(res.body) as { type: string; code: string; status: number; title: string; detail: string };
  expect(doc.status).toBe(status);
  expect(doc.code).toMatch(/^CR_[A-Z0-9_]+$/);
  expect(doc.type).toBe(problemType(doc.code));
  expect(typeof doc.title).toBe('string');
  expect(typeof doc.detail).toBe('string');
  if (code !== undefined) expect(doc.code).toBe(code);
  return doc;
}

/** `Authorization: Bearer <token>`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}


/** In-thread crypto: these tests are about the HTTP and audit controls, and a worker pool per service would only slow their start. */
const IN_THREAD = { CRYPTO_WORKERS: '0' };

/** {@link startStack} with in-thread crypto in both services (unless the options say otherwise). */
export function startSecurityStack(options: StackOptions = {}): Promise<TestStack> {
  return startStack({ ...options, ifaceEnv: { ...IN_THREAD, ...options.ifaceEnv }, appEnv: { ...IN_THREAD, ...options.appEnv } });
}

/** A stack whose app sends SMS through the fake SignalWire and listens on a real port for its callbacks. */
export interface SmsStack {
  stack: TestStack;
  fake: FakeSignalWire;
  /** The app's listening URL (its PUBLIC_BASE_URL). */
  appUrl: string;
  stop(): Promise<void>;
}

/** Starts the fake SignalWire and the stack with SMS configured; the app listens on 127.0.0.1 so callbacks reach it. */
export async function startSmsStack(options: StackOptions = {}): Promise<SmsStack> {
  const fake = await startFakeSignalWire({ stepMs: 20 });
  const port = await freePort();
  const appUrl = `http://127.0.0.1:${port}`;
  const stack = await startSecurityStack({
    ...options,
    appEnv: {
      ...fake.serviceEnv(appUrl),
      REDACTION_SENT_GRACE_SECONDS: '0',
      // The status callback drives redaction in these tests; the fallback job only backs it up.
      REDACTION_FALLBACK_DELAY_SECONDS: '600',
      ...options.appEnv,
    },
  });
  await stack.app.server.listen({ port, host: '127.0.0.1' });
  return {
    stack,
    fake,
    appUrl,
    async stop() {
      await stack.stop();
      await fake.stop();
    },
  };
}

/** Submits a payload as the stack's partner. */
export function submit(stack: TestStack, body: string, headers: Record<string, string> = {}, remoteAddress?: string): Promise<LightMyRequestResponse> {
  return stack.iface.server.inject({
    method: 'POST',
    url: '/v1/submissions',
    headers: { ...bearer(stack.tokens.partner), 'content-type': 'application/fhir+json', ...headers },
    payload: body,
    ...(remoteAddress ? { remoteAddress } : {}),
  });
}
