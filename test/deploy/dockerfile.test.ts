import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_NODE_FLAGS } from '../../services/core/runtime/nodeFlags.ts';

// Docker cannot run where the tests run: these read the Dockerfiles instruction by
// instruction, and run the HEALTHCHECK command itself against a real socket.

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(`${root}${path}`, 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  body: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), grouped by stage. */
function stages(text: string): Stage[] {
  const logical = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const out: Stage[] = [];
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const ins = { op: op.toUpperCase(), args };
    if (ins.op === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      out.push({ from: image, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] });
    } else {
      if (!out.length) throw new Error(`${op} before FROM`);
      out.at(-1)!.body.push(ins);
    }
  }
  return out;
}
const ops = (stage: Stage, op: string): string[] => stage.body.filter((i) => i.op === op).map((i) => i.args);

/** The exec-form array of a HEALTHCHECK ... CMD [...] instruction. */
function healthcheckCommand(stage: Stage): string[] {
  const [hc] = ops(stage, 'HEALTHCHECK');
  const json = /CMD\s+(\[.*\])\s*$/.exec(hc ?? '');
  if (!json) throw new Error('HEALTHCHECK is not in exec form');
  return JSON.parse(json[1]!) as string[];
}

const dockerfiles = { interface: 'deploy/interface.Dockerfile', app: 'deploy/app.Dockerfile' } as const;

describe.each(Object.entries(dockerfiles))('%s Dockerfile', (service, path) => {
  const all = stages(read(path));
  const runtime = all.at(-1)!;
  const deps = all.find((s) => s.name === 'deps');

  it('builds from a pinned Node 24 slim image in every stage', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const s of all) expect(s.from).toMatch(/^node:24\.\d+\.\d+-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/);
    expect(new Set(all.map((s) => s.from)).size, 'one Node for installing and running').toBe(1);
  });

  it('installs production dependencies exactly as locked, in a separate stage', () => {
    expect(deps).toBeDefined();
    expect(ops(deps!, 'COPY')).toContain('package.json package-lock.json ./');
    expect(ops(deps!, 'RUN').some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(ops(deps!, 'RUN').some((r) => /npm (install|i)\b/.test(r))).toBe(false);
  });

  it('copies into the runtime image only node_modules, package.json and services/', () => {
    const copies = ops(runtime, 'COPY');
    expect(copies).toContain('--from=deps /app/node_modules ./node_modules');
    expect(copies).toContain('package.json ./');
    expect(copies).toContain('services ./services');
    expect(copies).toHaveLength(3);
    expect(ops(runtime, 'ADD')).toEqual([]);
  });

  it('fetches nothing and installs nothing in the runtime stage', () => {
    for (const s of all) for (const r of ops(s, 'RUN')) expect(r).not.toMatch(/\b(curl|wget)\b/);
    for (const r of ops(runtime, 'RUN')) expect(r).not.toMatch(/\b(npm|npx|apt-get|apt|pip)\b/);
  });

  it('runs as the non-root node user, with the audit folder the one writable place it owns', () => {
    const users = ops(runtime, 'USER');
    expect(users.at(-1)).toBe('node');
    const envText = ops(runtime, 'ENV').join(' ');
    const auditFile = /AUDIT_FILE=(\S+)/.exec(envText)?.[1];
    expect(auditFile).toBe(`/var/lib/care-relay/audit/${service}.jsonl`);
    expect(ops(runtime, 'VOLUME')).toEqual(['["/var/lib/care-relay/audit"]']);
    expect(ops(runtime, 'RUN').join(' ')).toMatch(/chown node:node \/var\/lib\/care-relay\/audit/);
    expect(envText).toMatch(/KEYS_DIR=\/keys\b/);
    // Listening on loopback (the config default) would be unreachable from outside the container.
    expect(envText).toMatch(/HOST=0\.0\.0\.0\b/);
  });

  it('exposes its PORT and has a HEALTHCHECK on /healthz using node itself', () => {
    const port = /PORT=(\d+)/.exec(ops(runtime, 'ENV').join(' '))?.[1];
    expect(port).toBe(service === 'interface' ? '8080' : '8081');
    expect(ops(runtime, 'EXPOSE')).toEqual([port]);
    const cmd = healthcheckCommand(runtime);
    expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
    expect(cmd[2]).toContain('/healthz');
  });

  it('starts node with the service flags on services/<svc>/main.ts, and that file exists', () => {
    expect(ops(runtime, 'ENTRYPOINT')).toEqual([JSON.stringify(['node', ...SERVICE_NODE_FLAGS, `services/${service}/main.ts`]).replaceAll('","', '", "')]);
    expect(existsSync(`${root}services/${service}/main.ts`), `services/${service}/main.ts`).toBe(true);
  });
});

describe('the HEALTHCHECK command', () => {
  const cmd = healthcheckCommand(stages(read(dockerfiles.interface)).at(-1)!);
  let status = 200;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const run = (env: Record<string, string>): Promise<number | null> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, cmd.slice(1), { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
    });

  it('is the same in both images', () => {
    expect(healthcheckCommand(stages(read(dockerfiles.app)).at(-1)!)).toEqual(cmd);
  });

  it('exits 0 when /healthz answers 200 on PORT', async () => {
    status = 200;
    expect(await run({ PORT: String(port) })).toBe(0);
  });

  it('exits 1 when /healthz answers an error', async () => {
    status = 503;
    expect(await run({ PORT: String(port) })).toBe(1);
  });

  it('exits 1 when nothing listens on PORT', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await run({ PORT: String(freePort) })).toBe(1);
  });
});

describe('what the runtime image holds', () => {
  // The image installs with --omit=dev: a service importing a devDependency would start
  // everywhere but in its container. `care-relay dev` and the embedded emulators it (and the
  // tests) run in-process — the SQS emulator with its persistence correction, the DynamoDB
  // store — are the exceptions: no service loads them.
  const devOnly = new Set(['services/cli/dev.ts', 'services/devtools/sqsEmulator.ts', 'services/devtools/durableSqs.ts', 'services/devtools/embeddedDynamo.ts']);
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
  const files = (readdirSync(`${root}services`, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `services/${f.split('\\').join('/')}`);

  it('runs on production dependencies only', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const file of files.filter((f) => !devOnly.has(f))) {
      const specifiers = [...read(file).matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'([^'.][^']*)'/gm)].map((m) => m[1]!);
      for (const spec of specifiers) {
        if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        expect(Object.keys(pkg.dependencies), `${file} imports ${spec}`).toContain(name);
      }
    }
  });
});

describe('.dockerignore', () => {
  const lines = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('allows only the manifest, the lockfile and services/ into the build context', () => {
    expect(lines[0]).toBe('*');
    expect(lines.filter((l) => l.startsWith('!')).sort()).toEqual(['!package-lock.json', '!package.json', '!services/']);
  });

  it('excludes keys, secrets, dependencies, tools, history, tests and docs even if the allow-list widens', () => {
    const allowAt = Math.max(...lines.map((l, i) => (l.startsWith('!') ? i : -1)));
    const after = lines.slice(allowAt + 1).map((l) => l.replace(/^\*\*\//, '').replace(/\/$/, ''));
    for (const x of ['keys', 'secrets', 'node_modules', '.tools', '.git', 'test', 'bench', 'coverage', 'docs', '.env', '*.pem', '*.asc']) {
      expect(after, x).toContain(x);
    }
  });
});
