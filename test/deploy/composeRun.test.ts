// docker-compose.yml as written, without Docker: follow docs/deploy.md's preparation step
// (the exact commands it lists), then start both services with exactly what compose would
// give each container (the image's ENV and ENTRYPOINT from its Dockerfile, the service's
// environment, its bind mounts, named volumes and secrets), each container path mapped onto
// a temporary root, against the in-process emulator, and relay a submission to the inbox.
// The only substitutions are the network names (localstack, emr-sink), which become the
// in-process emulator and EMR sink, and HOST/PORT, which become loopback and free ports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';

interface Service {
  build?: { dockerfile?: string } | string;
  entrypoint?: string[];
  environment?: Record<string, string | number | boolean | null>;
  volumes?: string[];
  secrets?: string[];
}
interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}

const repo = resolve('.');
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as Compose;
const root = mkdtempSync(join(tmpdir(), 'cr-compose-'));
let sqs: TestSqs;
let sink: EmrSink;
const running: RunningProcess[] = [];
const printed = new Map<string, string>();

/** The commands of the first sh block under the heading "### 1. Prepare" in docs/deploy.md. */
function preparationCommands(): string[] {
  const doc = readFileSync('docs/deploy.md', 'utf8');
  const section = doc.slice(doc.indexOf('\n### 1. Prepare'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('docs/deploy.md: no sh block under "### 1. Prepare"');
  return block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '');
}

/** `${VAR:-default}` as compose resolves it with VAR unset in the shell. */
const interpolate = (v: string): string => v.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');

/** The image's ENV and ENTRYPOINT, from the Dockerfile compose builds it from. */
function image(s: Service): { env: Record<string, string>; entrypoint: string[] } {
  const dockerfile = readFileSync(typeof s.build === 'object' ? s.build.dockerfile! : 'deploy/interface.Dockerfile', 'utf8');
  const envBlock = /^ENV ((?:.*\\\n)*.*)$/m.exec(dockerfile)![1]!;
  const env = Object.fromEntries([...envBlock.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
  return { env, entrypoint };
}

/** What compose gives the container `name`: its environment, with container paths mapped onto the temporary root. */
function containerEnv(name: string, network: Record<string, string>): Record<string, string> {
  const s = compose.services[name]!;
  const mounts: Array<{ target: string; source: string }> = [];
  for (const v of s.volumes ?? []) {
    const [source = '', target = ''] = v.split(':');
    const host = source.startsWith('./') ? join(root, source) : join(root, 'volumes', name, source);
    mkdirSync(host, { recursive: true, mode: 0o700 });
    mounts.push({ target, source: host });
  }
  for (const secret of s.secrets ?? []) mounts.push({ target: `/run/secrets/${secret}`, source: join(root, compose.secrets[secret]!.file) });
  mounts.sort((a, b) => b.target.length - a.target.length);
  const env: Record<string, string> = {};
  const declared = { ...(name === 'queues-init' ? {} : image(s).env), ...Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(v === null ? '' : String(v))])) };
  for (const [k, v] of Object.entries(declared)) {
    if (k in network) {
      env[k] = network[k]!;
      continue;
    }
    if (!v.startsWith('/')) {
      env[k] = v;
      continue;
    }
    const m = mounts.find((x) => v === x.target || v.startsWith(`${x.target}/`));
    if (!m) throw new Error(`${name} ${k}=${v}: no mount or secret provides this container path`);
    env[k] = v === m.target ? m.source : join(m.source, posix.relative(m.target, v));
  }
  return env;
}

beforeAll(async () => {
  for (const cmd of preparationCommands()) {
    expect(cmd, 'the preparation step runs the care-relay command').toMatch(/^npx care-relay /);
    const r = spawnSync(process.execPath, [join(repo, 'services/cli/main.ts'), ...cmd.replace(/^npx care-relay /, '').split(/\s+/)], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}\n${r.stderr}`);
    for (const m of r.stdout.matchAll(/^\s+(interface|app)\s+(\w+) "[^"]+"\s+(\S+)$/gm)) printed.set(`${m[1]}:${m[2]}`, m[3]!);
  }
  sqs = await startTestSqs();
  sink = await startEmrSink({});
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await sink?.stop();
  await sqs?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('docs/deploy.md, then docker-compose.yml as written', () => {
  it('prepares every file compose names, passphrases apart from the key folders, tokens printed once', () => {
    for (const [name, secret] of Object.entries(compose.secrets)) expect(existsSync(join(root, secret.file)), `${name}: ${secret.file}`).toBe(true);
    for (const svc of ['interface', 'app']) {
      expect(readdirSync(join(root, 'keys', svc)).sort(), `keys/${svc} holds keys only`).toEqual(['peers', 'private.asc', 'public.asc']);
    }
    expect([...printed.keys()].sort()).toEqual(['app:admin', 'app:reader', 'app:writer', 'interface:admin', 'interface:partner']);
    for (const token of printed.values()) {
      for (const secret of Object.values(compose.secrets)) expect(readFileSync(join(root, secret.file), 'utf8')).not.toContain(token);
    }
  });

  it('starts both services with compose\'s environment, paths and secrets, and relays a submission to the inbox', async () => {
    const emr = new URL(String(compose.services.interface!.environment!.EMR_URL));
    const network = { SQS_ENDPOINT: sqs.endpoint, DYNAMODB_ENDPOINT: sqs.dynamodbEndpoint, LARGE_OBJECT_S3_ENDPOINT: sqs.endpoint, HOST: '127.0.0.1' };
    const init = compose.services['queues-init']!;
    // Asynchronous: the emulator it talks to runs in this process.
    const queuesInit = runNode(init.entrypoint![1]!, init.entrypoint!.slice(2), containerEnv('queues-init', network));
    expect(await queuesInit.exited, queuesInit.lines.join('\n')).toBe(0);

    const urls: Record<string, string> = {};
    for (const name of ['interface', 'app']) {
      const port = String(await freePort());
      const env = containerEnv(name, { ...network, PORT: port, ...(name === 'interface' ? { EMR_URL: `${sink.url}${emr.pathname}` } : {}) });
      // The entry file is the ENTRYPOINT's last word (node's flags come before it).
      const proc = runNode(image(compose.services[name]!).entrypoint.at(-1)!, [], env);
      running.push(proc);
      urls[name] = `http://127.0.0.1:${port}`;
      await waitReady(urls[name], proc);
    }

    const submitted = await fetch(`${urls.interface}/v1/submissions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${printed.get('interface:partner')}`, 'content-type': 'application/fhir+json' },
      body: '{"resourceType":"Patient","id":"compose"}',
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    const reader = { authorization: `Bearer ${printed.get('app:reader')}` };
    await waitFor(async () => {
      const list = (await (await fetch(`${urls.app}/v1/inbox`, { headers: reader })).json()) as { records: Array<{ id: string }> };
      return list.records.some((r) => r.id === id);
    }, { timeoutMs: 30_000, what: 'the submission in the inbox' });
    expect(await (await fetch(`${urls.app}/v1/inbox/${id}`, { headers: reader })).json()).toEqual({ resourceType: 'Patient', id: 'compose' });

    // Both services' admin routes answer their own admin token, and only an admin token.
    for (const [svc, url] of Object.entries(urls)) {
      expect((await fetch(`${url}/v1/admin/emergency`, { headers: { authorization: `Bearer ${printed.get(`${svc}:admin`)}` } })).status, `${svc} admin`).toBe(200);
    }
    expect((await fetch(`${urls.interface}/v1/admin/emergency`, { headers: { authorization: `Bearer ${printed.get('interface:partner')}` } })).status, 'a partner token is no admin token').toBe(401);
    expect((await fetch(`${urls.app}/v1/admin/emergency`, { headers: { authorization: `Bearer ${printed.get('interface:admin')}` } })).status, 'tokens are per service').toBe(401);
  }, 240_000);
});
