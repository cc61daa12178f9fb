// The README quick start, as a new user runs it: `npm start` (care-relay dev) spawns the
// emulator, the EMR sink and both services as separate processes; the printed curl
// commands work; Ctrl-C stops everything.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runNode, type RunningProcess } from '../helpers/processes.ts';
import { waitDevReady } from '../helpers/devStack.ts';
import { waitFor } from '../helpers/wait.ts';

let dir: string;
let dev: RunningProcess;
let ports: { iface: number; app: number; sink: number; sqs: number; mllp: number; mllpSink: number };

/** `care-relay dev` on this test's folders and ports, in its own process group (as a terminal runs it). */
function startDev(): RunningProcess {
  return runNode('services/cli/main.ts', ['dev', '--data', join(dir, 'data'), '--keys', join(dir, 'keys'), '--ready-timeout', '150'], {
    INTERFACE_PORT: String(ports.iface),
    APP_PORT: String(ports.app),
    EMR_SINK_PORT: String(ports.sink),
    SQS_PORT: String(ports.sqs),
    MLLP_PORT: String(ports.mllp),
    EMR_MLLP_SINK_PORT: String(ports.mllpSink),
  }, { detached: true });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-e2e-'));
  ports = { iface: await freePort(), app: await freePort(), sink: await freePort(), sqs: await freePort(), mllp: await freePort(), mllpSink: await freePort() };
  dev = startDev();
  await waitDevReady(dev, 200_000, 'care-relay dev to be ready');
}, 240_000);

afterAll(async () => {
  await dev?.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** The curl commands the dev command printed, turned into fetch calls. */
function printed(prefix: string): string {
  const line = dev.lines.find((l) => l.trim().startsWith(prefix));
  if (!line) throw new Error(`no printed line starting with ${prefix}`);
  return line.trim();
}

let addedToken: string;

/** Submits a small FHIR resource with this bearer token; resolves with the status. */
async function submitAs(token: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${ports.iface}/v1/submissions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: '{"resourceType":"Patient","id":"again"}',
  });
  return res.status;
}

function bearer(line: string): string {
  return /Authorization: Bearer ([^']+)'/.exec(line)![1]!;
}

describe('npm start (care-relay dev)', () => {
  it('creates dev keys, each service its own folder, private keys 0600', () => {
    for (const service of ['app', 'interface']) {
      const file = join(dir, 'keys', service, 'private.asc');
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(existsSync(join(dir, 'keys', service, 'peers'))).toBe(true);
    }
  });

  it('relays a submission from the printed curl to the inbox, and a chart update to the EMR sink', async () => {
    const submitLine = printed(`curl -s -X POST http://127.0.0.1:${ports.iface}/v1/submissions`);
    const submitted = await fetch(`http://127.0.0.1:${ports.iface}/v1/submissions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer(submitLine)}`, 'content-type': 'application/fhir+json' },
      body: /-d '([^']+)'/.exec(submitLine)![1],
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };

    const readerToken = bearer(printed(`curl -s http://127.0.0.1:${ports.app}/v1/inbox -H`));
    const auth = { authorization: `Bearer ${readerToken}` };
    await waitFor(async () => {
      const list = (await (await fetch(`http://127.0.0.1:${ports.app}/v1/inbox`, { headers: auth })).json()) as { records: Array<{ id: string }> };
      return list.records.some((r) => r.id === id);
    });
    const record = await fetch(`http://127.0.0.1:${ports.app}/v1/inbox/${id}`, { headers: auth });
    expect(await record.json()).toEqual({ resourceType: 'Patient', id: 'example' });
    expect((await fetch(`http://127.0.0.1:${ports.app}/v1/inbox/${id}/ack`, { method: 'POST', headers: auth })).status).toBe(200);

    const chartLine = printed(`curl -s -X POST http://127.0.0.1:${ports.app}/v1/chart-updates`);
    const chart = await fetch(`http://127.0.0.1:${ports.app}/v1/chart-updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer(chartLine)}`, 'content-type': 'application/hl7-v2' },
      body: 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|1|P|2.5\r',
    });
    expect(chart.status).toBe(202);
    const chartId = ((await chart.json()) as { id: string }).id;
    await waitFor(async () => {
      const deliveries = (await (await fetch(`http://127.0.0.1:${ports.sink}/deliveries`)).json()) as Array<{ envelopeId: string }>;
      return deliveries.some((d) => d.envelopeId === chartId);
    });
  });

  it('prints no payload and no token in the services\' output', () => {
    const secrets = JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')) as Record<string, string>;
    const serviceLines = dev.lines.filter((l) => l.startsWith('[interface]') || l.startsWith('[app]'));
    expect(serviceLines.length).toBeGreaterThan(0);
    for (const line of serviceLines) {
      expect(line).not.toContain('"resourceType"');
      expect(line).not.toContain('ORU^R01');
      for (const value of Object.values(secrets)) expect(line).not.toContain(value);
    }
  });

  it('takes a partner token added with `care-relay tokens add --hup` without a restart', async () => {
    const added = spawnSync(process.execPath, ['services/cli/main.ts', 'tokens', 'add', '--kind', 'partner', '--name', 'added-partner', '--file', join(dir, 'data', 'partners.json'), '--hup', String(dev.child.pid)], { encoding: 'utf8' });
    expect(added.status, added.stderr).toBe(0);
    addedToken = added.stdout.split('\n')[added.stdout.split('\n').findIndex((l) => l.includes('shown only this once')) + 1]!;
    await waitFor(async () => (await submitAs(addedToken)) === 202, { what: 'the added token accepted after SIGHUP' });
  });

  it("stops everything cleanly on a terminal's Ctrl-C (SIGINT to the whole process group): each service drains once, no second signal", async () => {
    process.kill(-dev.child.pid!, 'SIGINT');
    expect(await dev.exited).toBe(0);
    for (const service of ['interface', 'app']) {
      const lines = dev.lines.filter((l) => l.startsWith(`[${service}]`));
      expect(lines.some((l) => l.includes('"msg":"consumer stopped"')), service).toBe(true);
      expect(lines.filter((l) => l.includes('"msg":"stopping"')), service).toHaveLength(1);
      expect(lines.some((l) => l.includes('second signal')), service).toBe(false);
    }
    for (const port of [ports.iface, ports.app, ports.sink]) {
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    }
  });

  it('keeps tokens an operator added, and prints the same demo tokens, when started again', async () => {
    const demoBefore = bearer(printed(`curl -s -X POST http://127.0.0.1:${ports.iface}/v1/submissions`));
    dev = startDev();
    await waitDevReady(dev, 60_000, 'care-relay dev to be ready again');
    expect(bearer(printed(`curl -s -X POST http://127.0.0.1:${ports.iface}/v1/submissions`))).toBe(demoBefore);
    expect(await submitAs(addedToken)).toBe(202);
    expect(await submitAs(demoBefore)).toBe(202);
    expect(await dev.stop('SIGINT')).toBe(0);
  }, 90_000);
});
