import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { posix } from 'node:path';
import { appEnvSchema } from '../../services/app/config.ts';
import { interfaceEnvSchema } from '../../services/interface/config.ts';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// docker-compose.yml is the deployment a hospital's engineer runs first; Docker is not
// available where the tests run, so these check the file's promises statically.

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(`${root}${path}`, 'utf8');

interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  entrypoint?: string[];
  environment?: Record<string, string | number | boolean | null>;
  volumes?: Array<string | { type?: string; source?: string; target?: string; read_only?: boolean }>;
  secrets?: Array<string | { source: string }>;
  ports?: Array<string | number | { published?: string | number }>;
  networks?: string[] | Record<string, unknown>;
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  read_only?: boolean;
  tmpfs?: string[] | string;
  stop_grace_period?: string;
}

interface Compose {
  services: Record<string, Service>;
  networks?: Record<string, { internal?: boolean; driver_opts?: Record<string, string> } | null>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string; environment?: string }>;
}

// `!reset` / `!override` are compose's own tags; read them as plain values.
const composeTags = [
  { tag: '!reset', resolve: (v: unknown) => v },
  { tag: '!override', resolve: (v: unknown) => v },
];
const loadCompose = (path: string): Compose => parse(read(path), { merge: true, customTags: composeTags }) as Compose;

const compose = loadCompose('docker-compose.yml');
const services = compose.services;
const svc = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};

/** Bind and volume mounts as { source, target, readOnly }. */
function mounts(s: Service): Array<{ source: string; target: string; readOnly: boolean }> {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':');
      return { source, target, readOnly: mode.split(',').includes('ro') };
    }
    return { source: v.source ?? '', target: v.target ?? '', readOnly: v.read_only === true };
  });
}

const normalise = (p: string): string => posix.normalize(p).replace(/\/+$/, '');
const networksOf = (s: Service): string[] => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));
const envOf = (s: Service): Record<string, string> =>
  Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]));
const secretNames = (s: Service): string[] => (s.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source));

/** The variable names each service's config schema declares. */
const configVars: Record<string, string[]> = {
  interface: Object.keys(interfaceEnvSchema.shape),
  app: Object.keys(appEnvSchema.shape),
};
// What the AWS SDK itself reads (LocalStack's dummy credentials).
const sdkVars = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];

const ours = ['queues-init', 'interface', 'app', 'emr-sink'];

describe('docker-compose.yml', () => {
  it('has LocalStack, the queue init hook, both services and the demo EMR sink', () => {
    expect(Object.keys(services).sort()).toEqual(['app', 'emr-sink', 'interface', 'localstack', 'queues-init']);
  });

  it('gives each service only its own keys folder, read-only, mounted where KEYS_DIR points', () => {
    for (const name of ['interface', 'app']) {
      const other = name === 'interface' ? 'app' : 'interface';
      const keyMounts = mounts(svc(name)).filter((m) => normalise(m.source).startsWith('keys') || normalise(m.source).startsWith('./keys'));
      expect(keyMounts, `${name} mounts exactly one keys folder`).toHaveLength(1);
      const [m] = keyMounts;
      expect(normalise(m!.source)).toBe(`keys/${name}`);
      expect(m!.readOnly, `${name}'s keys are mounted read-only`).toBe(true);
      expect(envOf(svc(name)).KEYS_DIR).toBe(m!.target);
      expect(mounts(svc(name)).some((x) => normalise(x.source).includes(`keys/${other}`)), `${name} never sees ${other}'s keys`).toBe(false);
    }
  });

  it('mounts ./keys as a whole nowhere, and keys only into the two services', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        expect(['keys', '.'], `${name} mounts ${m.source}`).not.toContain(normalise(m.source));
        if (!['interface', 'app'].includes(name)) expect(normalise(m.source), `${name} mounts keys`).not.toMatch(/(^|\/)keys(\/|$)/);
      }
    }
  });

  it('pins LocalStack to a 4.x tag that runs without a token, passing LOCALSTACK_AUTH_TOKEN through from the shell', () => {
    const ls = svc('localstack');
    expect(ls.image).toMatch(/^localstack\/localstack:4\.\d+(\.\d+)?$/);
    const env = envOf(ls);
    expect(env.SERVICES).toBe('sqs,sns,dynamodb,s3');
    expect(env.LOCALSTACK_AUTH_TOKEN).toBe('${LOCALSTACK_AUTH_TOKEN:-}');
  });

  it('pins the fauxqs image of the lighter override, which keeps the SQS service name', () => {
    const over = loadCompose('docker-compose.fauxqs.yml');
    expect(Object.keys(over.services)).toEqual(['localstack']);
    expect(over.services.localstack!.image).toMatch(/^kibertoad\/fauxqs:\d+\.\d+\.\d+$/);
    expect(over.services.localstack!.healthcheck?.test, 'a healthcheck that works without curl').toBeDefined();
    expect(over.services.localstack!.ports).toBeUndefined();
  });

  it('keeps SQS on an internal network: LocalStack is on internal networks only and publishes no port', () => {
    const ls = svc('localstack');
    expect(ls.ports).toBeUndefined();
    expect(networksOf(ls).length).toBeGreaterThan(0);
    for (const n of networksOf(ls)) expect(compose.networks?.[n]?.internal, `network ${n} is internal`).toBe(true);
    for (const name of ['interface', 'app', 'queues-init']) {
      expect(networksOf(svc(name)).some((n) => networksOf(ls).includes(n)), `${name} reaches SQS`).toBe(true);
    }
  });

  it('publishes only the two services\' HTTP ports, on loopback', () => {
    const publishing = Object.entries(services).filter(([, s]) => (s.ports ?? []).length > 0).map(([n]) => n);
    expect(publishing.sort()).toEqual(['app', 'interface']);
    expect(svc('interface').ports).toEqual([`127.0.0.1:${envOf(svc('interface')).PORT}:${envOf(svc('interface')).PORT}`]);
    expect(svc('app').ports).toEqual([`127.0.0.1:${envOf(svc('app')).PORT}:${envOf(svc('app')).PORT}`]);
  });

  it('puts the EMR sink on an internal network that only the interface shares', () => {
    const sink = networksOf(svc('emr-sink'));
    for (const n of sink) expect(compose.networks?.[n]?.internal).toBe(true);
    expect(sink.some((n) => networksOf(svc('interface')).includes(n))).toBe(true);
    expect(sink.some((n) => networksOf(svc('app')).includes(n)), 'the app cannot reach the EMR').toBe(false);
    const url = new URL(envOf(svc('interface')).EMR_URL!);
    expect(url.hostname).toBe('emr-sink');
    expect(url.port).toBe(envOf(svc('emr-sink')).PORT);
  });

  it('lets the interface and the app share no network but the one to SQS (neither reaches the other\'s port)', () => {
    const shared = networksOf(svc('interface')).filter((n) => networksOf(svc('app')).includes(n));
    expect(shared).toEqual(networksOf(svc('localstack')));
    for (const n of shared) expect(compose.networks?.[n]?.internal, `${n} is internal`).toBe(true);
  });

  it('gives a way out (a network that is neither internal nor without NAT) to the app only', () => {
    const egress = (n: string): boolean => {
      const net = compose.networks?.[n];
      return net?.internal !== true && net?.driver_opts?.['com.docker.network.bridge.enable_ip_masquerade'] !== 'false';
    };
    const withEgress = Object.entries(services)
      .filter(([name, s]) => name !== 'localstack' && networksOf(s).some(egress))
      .map(([name]) => name);
    expect(withEgress).toEqual(['app']);
    // Every network is declared: an undeclared one would be a default bridge with NAT.
    for (const [name, s] of Object.entries(services)) for (const n of networksOf(s)) expect(Object.keys(compose.networks ?? {}), `${name}: ${n}`).toContain(n);
    expect(networksOf(svc('localstack')).some(egress), 'LocalStack has no way out').toBe(false);
  });

  it('gives secrets as compose secret files under ./secrets, each service only its own', () => {
    for (const name of ['interface', 'app']) {
      const s = svc(name);
      const env = envOf(s);
      const mine = secretNames(s);
      expect(mine.length).toBeGreaterThan(0);
      for (const secret of mine) {
        expect(secret.startsWith(`${name}_`), `${name} is given ${secret}`).toBe(true);
        const file = compose.secrets?.[secret]?.file;
        expect(file, `secret ${secret} comes from a file`).toMatch(new RegExp(`^\\./secrets/${name}/`));
      }
      for (const v of ['KEY_PASSPHRASE_FILE', 'HMAC_KEY_FILE']) expect(env[v], `${name} ${v}`).toMatch(/^\/run\/secrets\//);
      // Every *_FILE the service reads names a secret it is given.
      for (const [k, v] of Object.entries(env)) {
        if (!k.endsWith('_FILE') || k === 'AUDIT_FILE') continue;
        expect(mine.map((x) => `/run/secrets/${x}`), `${name} ${k}=${v}`).toContain(v);
      }
    }
    expect(envOf(svc('interface')).PARTNERS_FILE).toMatch(/^\/run\/secrets\//);
    expect(envOf(svc('interface')).ADMIN_TOKENS_FILE, 'the interface\'s admin routes have tokens').toMatch(/^\/run\/secrets\//);
    expect(envOf(svc('app')).APP_TOKENS_FILE).toMatch(/^\/run\/secrets\//);
  });

  it('has no inline secret in any environment', () => {
    const secretName = /PASSPHRASE|SECRET|TOKEN|PASSWORD|HMAC|PRIVATE|SIGNING_KEY|API_KEY|CREDENTIAL/;
    for (const [name, s] of Object.entries(services)) {
      for (const [k, v] of Object.entries(envOf(s))) {
        expect(v, `${name} ${k}`).not.toMatch(/BEGIN PGP|PRIVATE KEY/);
        // Long opaque values look like keys or tokens.
        if (!v.startsWith('/')) expect(v, `${name} ${k}`).not.toMatch(/^[A-Za-z0-9+/=_-]{24,}$/);
        if (!secretName.test(k) || k.endsWith('_FILE')) continue;
        if (k === 'LOCALSTACK_AUTH_TOKEN') {
          expect(v, 'passed through from the shell, never written here').toBe('${LOCALSTACK_AUTH_TOKEN:-}');
          continue;
        }
        // LocalStack's documented dummy credentials, only where the endpoint is LocalStack.
        expect(k, `${name} sets ${k} inline`).toBe('AWS_SECRET_ACCESS_KEY');
        expect(v).toBe('test');
        expect(envOf(s).SQS_ENDPOINT).toBe('http://localstack:4566');
      }
    }
  });

  it('uses only the environment variable names the services\' config.ts files declare', () => {
    const allowed = (vars: string[], v: string): boolean => vars.includes(v) || (v.endsWith('_FILE') && vars.includes(v.slice(0, -5))) || sdkVars.includes(v);
    for (const name of ['interface', 'app']) {
      for (const k of Object.keys(envOf(svc(name)))) expect(allowed(configVars[name]!, k), `${name}: ${k} is not a config variable`).toBe(true);
    }
    // queues init reads a subset of what both services read (endpoint, region, prefix, FIFO).
    const shared = configVars.interface!.filter((v) => configVars.app!.includes(v));
    for (const k of Object.keys(envOf(svc('queues-init')))) expect(allowed(shared, k), `queues-init: ${k}`).toBe(true);
  });

  it('runs our containers read-only with a tmpfs /tmp, and the audit trail on a named volume', () => {
    for (const name of ours) {
      const s = svc(name);
      expect(s.read_only, `${name} read_only`).toBe(true);
      const tmpfs = Array.isArray(s.tmpfs) ? s.tmpfs : [s.tmpfs ?? ''];
      expect(tmpfs.some((t) => t.split(':')[0] === '/tmp'), `${name} tmpfs /tmp`).toBe(true);
    }
    for (const name of ['interface', 'app']) {
      const auditFile = envOf(svc(name)).AUDIT_FILE!;
      const dir = posix.dirname(auditFile);
      const m = mounts(svc(name)).find((x) => x.target === dir);
      expect(m, `${name}: a volume at ${dir}`).toBeDefined();
      expect(Object.keys(compose.volumes ?? {}), `${name}: named volume`).toContain(m!.source);
      expect(m!.readOnly).toBe(false);
      // Every other mount of a read-only container is read-only too.
      for (const other of mounts(svc(name))) if (other.target !== dir) expect(other.readOnly, `${name} ${other.target}`).toBe(true);
    }
  });

  it('starts the services only after the queues exist, created by `care-relay queues init` itself', () => {
    const init = svc('queues-init');
    expect(init.entrypoint).toEqual(['node', 'services/cli/main.ts', 'queues', 'init']);
    expect(init.depends_on?.localstack?.condition).toBe('service_healthy');
    expect(envOf(init).SQS_ENDPOINT).toBe('http://localstack:4566');
    // The same init creates the state tables, on LocalStack's DynamoDB, where the services look for them.
    expect(envOf(init).DYNAMODB_ENDPOINT).toBe('http://localstack:4566');
    for (const name of ['interface', 'app']) {
      expect(envOf(svc(name)).DYNAMODB_ENDPOINT, name).toBe('http://localstack:4566');
      expect(svc(name).depends_on?.['queues-init']?.condition, name).toBe('service_completed_successfully');
      expect(envOf(svc(name)).SQS_ENDPOINT).toBe('http://localstack:4566');
      expect(envOf(svc(name)).QUEUE_PREFIX).toBe(envOf(init).QUEUE_PREFIX);
    }
    expect(read('services/cli/program.ts')).toMatch(/queues: \{ file: '\.\/queues\.ts'/);
  });

  it('has healthchecks: LocalStack in the file, the Node containers from their image', () => {
    expect(svc('localstack').healthcheck?.test).toBeDefined();
    for (const name of ['interface', 'app', 'emr-sink']) {
      expect(svc(name).healthcheck?.disable, `${name} keeps its image's HEALTHCHECK`).not.toBe(true);
      const dockerfile = svc(name).build?.dockerfile;
      expect(dockerfile, `${name} is built from a Dockerfile in deploy/`).toMatch(/^deploy\/\w+\.Dockerfile$/);
      expect(read(dockerfile!)).toMatch(/^HEALTHCHECK /m);
    }
    // Whatever a service waits on as healthy has a healthcheck.
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, cond] of Object.entries(s.depends_on ?? {})) {
        if (cond.condition === 'service_healthy') expect(svc(dep).healthcheck?.disable, `${name} waits on ${dep}`).not.toBe(true);
      }
    }
  });

  it('builds from the repository\'s Dockerfiles and runs entry files that exist', () => {
    expect(svc('interface').build?.dockerfile).toBe('deploy/interface.Dockerfile');
    expect(svc('app').build?.dockerfile).toBe('deploy/app.Dockerfile');
    for (const name of ours) {
      const entry = svc(name).entrypoint;
      if (entry) expect(existsSync(`${root}${entry[1]}`), `${name}: ${entry[1]} exists`).toBe(true);
    }
  });

  it('gives in-flight work time to finish on SIGTERM (stop_grace_period above SHUTDOWN_DEADLINE_MS)', () => {
    const deadlineMs = Number(/SHUTDOWN_DEADLINE_MS: envVar\.int\((\d[\d_]*)/.exec(read('services/core/config/common.ts'))![1]!.replaceAll('_', ''));
    for (const name of ['interface', 'app']) {
      const grace = /^(\d+)s$/.exec(svc(name).stop_grace_period ?? '');
      expect(grace, `${name} stop_grace_period in seconds`).not.toBeNull();
      expect(Number(grace![1]) * 1000).toBeGreaterThan(deadlineMs);
    }
  });

  it('keeps each key passphrase out of the key folder mounted at /keys', () => {
    for (const name of ['interface', 'app']) {
      const file = compose.secrets?.[`${name}_key_passphrase`]?.file;
      expect(file).toBe(`./secrets/${name}/key-passphrase`);
      for (const m of mounts(svc(name))) expect(normalise(file!).startsWith(normalise(m.source)), `${file} is under ${m.source}`).toBe(false);
    }
  });

  it('keeps ./secrets out of git', () => {
    expect(read('.gitignore').split('\n').map((l) => l.trim())).toContain('secrets/');
  });
});
