import { stat, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import type { TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { bearer, readAudit, startSecurityStack } from './helpers.ts';

let stack: TestStack;
const running = new Set<RunningProcess>();

beforeAll(async () => {
  stack = await startSecurityStack();
});
afterAll(async () => {
  for (const proc of running) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  await stack?.stop();
});

interface Interface {
  proc: RunningProcess;
  url: string;
}

/** Starts the real interface process on `auditFile` (its emergency state file sits next to it). */
async function startInterface(auditFile: string, extra: Record<string, string> = {}): Promise<Interface> {
  const port = await freePort();
  const proc = runNode('services/interface/main.ts', [], { ...stack.env.iface, PORT: String(port), AUDIT_FILE: auditFile, CRYPTO_WORKERS: '0', ...extra });
  running.add(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, proc);
  return { proc, url };
}

async function stopInterface(it: Interface): Promise<void> {
  expect(await it.proc.stop('SIGTERM')).toBe(0);
}

/** Status (and problem code) of a submission attempt: 503 CR_EMERGENCY_MODE while the switch is on. */
async function submitStatus(it: Interface): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${it.url}/v1/submissions`, { method: 'POST', headers: { ...bearer(stack.tokens.partner), 'content-type': 'application/fhir+json' }, body: '{}' });
  const body = (await res.json()) as { code?: string };
  return { status: res.status, ...(body.code ? { code: body.code } : {}) };
}

function switchTo(it: Interface, body: string, token = stack.tokens.admin): Promise<Response> {
  return fetch(`${it.url}/v1/admin/emergency`, { method: 'PUT', headers: { ...bearer(token), 'content-type': 'application/json' }, body });
}

const EMERGENCY = { status: 503, code: 'CR_EMERGENCY_MODE' };
// An authenticated partner gets past the switch to payload validation.
const SERVING = { status: 400, code: 'CR_PAYLOAD_MALFORMED' };

describe('emergency mode survives a restart of the real process', { timeout: 120_000 }, () => {
  it('switched on by an admin, restarted: still on (intake 503), until an admin switches it off, which also survives a restart', async () => {
    const audit = join(stack.dir, 'restart-audit.jsonl');
    const stateFile = join(stack.dir, 'restart-audit.emergency.json');
    let iface = await startInterface(audit);
    expect(await submitStatus(iface)).toEqual(SERVING);
    const on = await switchTo(iface, JSON.stringify({ active: true, reason: 'ransomware drill' }));
    expect(on.status).toBe(200);
    expect(await submitStatus(iface)).toEqual(EMERGENCY);
    await stopInterface(iface);

    // Persisted atomically, readable by the service account only.
    expect((await stat(stateFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toMatchObject({ active: true, actor: 'admin', reason: 'ransomware drill' });

    iface = await startInterface(audit);
    expect(await submitStatus(iface)).toEqual(EMERGENCY);
    expect(await (await fetch(`${iface.url}/v1/admin/emergency`, { headers: bearer(stack.tokens.admin) })).json()).toEqual({ active: true });
    // The trail and the service agree: the last emergency.changed says active.
    const changes = (await readAudit(audit)).filter((l) => l.action === 'emergency.changed');
    expect(changes.at(-1)).toMatchObject({ actor: 'admin', outcome: 'success', details: { active: true } });
    // The free-text reason stays out of the trail.
    expect(await readFile(audit, 'utf8')).not.toContain('ransomware drill');

    expect((await switchTo(iface, JSON.stringify({ active: false }))).status).toBe(200);
    expect(await submitStatus(iface)).toEqual(SERVING);
    await stopInterface(iface);
    iface = await startInterface(audit);
    expect(await submitStatus(iface)).toEqual(SERVING);
    await stopInterface(iface);
  });

  it('{"active": null} and other non-booleans do not switch it off: 400 problem, still on; a non-admin cannot switch it', async () => {
    const iface = await startInterface(join(stack.dir, 'strict-audit.jsonl'), { EMERGENCY_MODE: 'true' });
    const bad = ['{"active": null}', '{"active": 0}', '{"active": "false"}', '{"active": false, "until": "never"}', '{"active": false, "reason": ""}', `{"active": false, "reason": "${'x'.repeat(501)}"}`, '{}', '[]', 'null'];
    for (const body of bad) {
      const res = await switchTo(iface, body);
      expect(res.status, body).toBe(400);
      expect(res.headers.get('content-type'), body).toMatch(/^application\/problem\+json/);
      expect(((await res.json()) as { code: string }).code, body).toBe('CR_HTTP_VALIDATION');
    }
    expect((await switchTo(iface, '{"active": false}', stack.tokens.partner)).status).toBe(401);
    expect(await submitStatus(iface)).toEqual(EMERGENCY);
    await stopInterface(iface);
  });

  it('EMERGENCY_MODE=true is the newest instruction at start: it wins over a persisted "off"', async () => {
    const audit = join(stack.dir, 'config-audit.jsonl');
    await writeFile(join(stack.dir, 'config-audit.emergency.json'), JSON.stringify({ active: false, changedAt: new Date(Date.now() - 60_000).toISOString(), actor: 'admin' }));
    const iface = await startInterface(audit, { EMERGENCY_MODE: 'true' });
    expect(await submitStatus(iface)).toEqual(EMERGENCY);
    await stopInterface(iface);
    expect(JSON.parse(await readFile(join(stack.dir, 'config-audit.emergency.json'), 'utf8'))).toMatchObject({ active: true, actor: 'config' });
  });

  it('a corrupt state file stops the start with an error naming the file (fail closed, never silently open)', async () => {
    const stateFile = join(stack.dir, 'corrupt.json');
    for (const content of ['{"active": tr', JSON.stringify({ active: 'no', changedAt: new Date().toISOString(), actor: 'admin' }), JSON.stringify({ active: false })]) {
      await writeFile(stateFile, content);
      const port = await freePort();
      const proc = runNode('services/interface/main.ts', [], { ...stack.env.iface, PORT: String(port), AUDIT_FILE: join(stack.dir, 'corrupt-audit.jsonl'), EMERGENCY_STATE_FILE: stateFile, CRYPTO_WORKERS: '0' });
      running.add(proc);
      expect(await proc.exited).toBe(1);
      await waitFor(() => proc.lines.some((l) => l.includes(`emergency state file ${stateFile}`)), { what: 'the error naming the file' });
    }
  });
});
