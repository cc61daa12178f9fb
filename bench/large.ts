// `npm run bench -- --only=large` (or `node bench/large.ts`): large documents end to end
// through S3, each service in its own process so its peak RSS is its own. Reports MiB/s
// for 10 and 100 MiB documents in both directions (a submission: POST until the record has
// been read back whole from the inbox; a chart update: POST until the EMR endpoint has
// received it whole), the rise of each service's peak RSS over its idle RSS in each
// direction (the largest document twice, each run reported), and gpg streaming the same file.
// The services start with the flags they start with everywhere (SERVICE_NODE_FLAGS);
// BENCH_SERVICE_NODE_FLAGS replaces them (space-separated, empty for none), and BENCH_SERVICE_ENV
// adds NAME=value pairs to their environment, to compare.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { hashToken } from '../services/core/http/auth.ts';
import { ensureObjectBucket } from '../services/core/objects/bucket.ts';
import { serviceEnv, serviceNodeFlags } from './serviceFlags.ts';
import { ensureQueues } from '../services/core/transport/queues.ts';
import { startEmrSink } from '../services/devtools/emrSink.ts';
import { makeBenchKeys, round, type BenchKeys } from './lib.ts';
import { commonEnv, startBenchSqs, type BenchSqs } from './stack.ts';

const MiB = 1024 * 1024;

/** One size's figures. */
export interface LargeSizeResult {
  /** Document size, MiB. */
  mib: number;
  /** care-relay end to end: POST, seal, S3, SQS, check on receipt, GET streamed back, MiB/s. */
  relayMiBps: number;
  /** gpg --sign --encrypt then gpg --decrypt of the same file, streamed, MiB/s. */
  gpgMiBps: number | undefined;
  /** A chart update end to end: POST to the app, seal, S3, SQS, check on the interface, streamed to the EMR, MiB/s. */
  chartMiBps: number;
}

/** Peak RSS above idle, MiB, per service. */
export interface RssRise {
  interface: number;
  app: number;
}

/** One run of the largest document in one direction. */
export interface LargeRssRun {
  /** Which direction. */
  direction: 'submission' | 'chart';
  /** Peak RSS above the RSS just before this run, MiB, per service. */
  rise: RssRise;
  /** The same peak above the RSS after the warm-up (when lower), MiB, per service. */
  fromWarm: RssRise;
  /** RSS just before this run, MiB, per service. */
  before: RssRise;
}

/** The large-document section's result. */
export interface LargeResult {
  sizes: LargeSizeResult[];
  /** Highest peak RSS rise over the RSS just before a run of the largest submission, MiB, per service (limit: 64). */
  rssRiseMiB: RssRise;
  /** Highest peak RSS rise over the RSS just before a run of the largest chart update, MiB, per service (limit: 64). */
  chartRssRiseMiB: RssRise;
  /** The highest of the same peaks above the RSS after the warm-up of the fresh pair (when lower): earlier runs' uncollected memory counts too. */
  fromWarmMiB: { submission: RssRise; chart: RssRise };
  /** Every run of the largest document, in order. */
  rssRuns: LargeRssRun[];
  /** RSS after the warm-up, MiB, per service and direction. */
  warmMiB: { submission: RssRise; chart: RssRise };
  /** The V8 flags the services ran with. */
  nodeFlags: string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const status = (pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> =>
  readFile(`/proc/${pid}/status`, 'utf8').then((t) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0) * 1024);

/** Resets a process's peak RSS (Linux: clear_refs 5), so the peak measured is this run's. */
async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}

function doc(bytes: number, seed: number): Readable {
  const block = Buffer.from(createHash('sha512').update(String(seed)).digest('hex').repeat(512));
  let left = bytes;
  let n = 0;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const c = Buffer.from(block.subarray(0, Math.min(left, block.length)));
      c.write((n++).toString(16).padStart(16, '0').slice(0, c.length), 'latin1');
      if (n === 1) c.write('<ClinicalDocument>', 'latin1');
      left -= c.length;
      this.push(c);
    },
  });
}

function http(url: string, method: string, headers: Record<string, string | number>, body?: Readable): Promise<{ status: number; bytes: number; sha256: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let text = '';
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
        if (text.length < 4096) text += c.toString('utf8');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex'), text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

async function waitUntil<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const nodeFlags = serviceNodeFlags;

async function spawnService(name: 'interface' | 'app', env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeFlags(), `services/${name}/main.ts`], { env: { ...env, ...serviceEnv(), PORT: String(port), PATH: process.env.PATH ?? '', NODE_OPTIONS: process.env.XOPT ?? '' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(async () => ((await http(`${url}/healthz`, 'GET', {})).status === 200 ? true : undefined), `${name} to start`, 300_000);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  return { child, url };
}

async function gpgStreamed(keys: BenchKeys, file: string, work: string): Promise<number | undefined> {
  if (spawnSync('gpg', ['--version']).status !== 0) return undefined;
  const pass = join(work, 'pass');
  await writeFile(pass, keys.passphrase, { mode: 0o600 });
  const home = join(work, 'g');
  await mkdir(home, { recursive: true, mode: 0o700 });
  const gpg = (args: string[]) => spawnSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--quiet', '--trust-model', 'always', '--pinentry-mode', 'loopback', '--passphrase-file', pass, ...args], { stdio: 'ignore', timeout: 600_000 });
  for (const f of [join(keys.interface.dir, 'private.asc'), join(keys.app.dir, 'private.asc')]) gpg(['--import', f]);
  const t0 = performance.now();
  const sealed = gpg(['--compress-algo', 'none', '--local-user', keys.interface.fingerprint, '--recipient', keys.app.fingerprint, '--sign', '--encrypt', '--output', `${file}.pgp`, file]);
  const opened = gpg(['--decrypt', '--output', '/dev/null', `${file}.pgp`]);
  const seconds = (performance.now() - t0) / 1000;
  spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
  await rm(`${file}.pgp`, { force: true });
  return sealed.status === 0 && opened.status === 0 ? seconds : undefined;
}

/** Runs the large-document section (sizes in MiB; the last one is the RSS run, made `largestRuns` times per direction). */
export async function benchLarge(sqs: BenchSqs, keys: BenchKeys, sizesMiB: readonly number[] = [10, 100], largestRuns = 2): Promise<LargeResult> {
  const prefix = `large${randomBytes(3).toString('hex')}-`;
  await ensureQueues(sqs.client, { prefix, maxReceiveCount: 5, visibilityTimeoutSeconds: 60 });
  await sqs.ensureTables(prefix);
  const bucket = `${prefix.slice(0, -1)}-objects`;
  const env = sqs.serviceEnv();
  const s3 = new S3Client({ endpoint: env.SQS_ENDPOINT, region: env.AWS_REGION, forcePathStyle: true, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! } });
  await ensureObjectBucket(s3, { bucket, region: env.AWS_REGION!, expireAfterDays: 5 });
  s3.destroy();
  const work = await mkdtemp(join(tmpdir(), 'crl-'));
  const partner = randomBytes(18).toString('base64url');
  const reader = randomBytes(18).toString('base64url');
  const writer = randomBytes(18).toString('base64url');
  // The EMR endpoint: hashes each body as it streams in, keeps only its size and SHA-256.
  const emr = await startEmrSink({ keepBodyBytes: 0 });
  await writeFile(join(work, 'partners.json'), JSON.stringify({ tokens: [{ name: 'bench-partner', sha256: hashToken(partner), rateLimitPerMinute: 100_000 }] }));
  await writeFile(join(work, 'app-tokens.json'), JSON.stringify({ tokens: [
    { name: 'bench-reader', sha256: hashToken(reader), roles: ['reader'] },
    { name: 'bench-writer', sha256: hashToken(writer), roles: ['writer'] },
  ] }));
  const common = { ...commonEnv(sqs, prefix), LOG_LEVEL: 'warn', LARGE_OBJECT_BUCKET: bucket, LARGE_OBJECT_S3_ENDPOINT: env.SQS_ENDPOINT!, HTTP_REQUEST_TIMEOUT_MS: '600000', HTTP_HEADERS_TIMEOUT_MS: '60000', CRYPTO_WORKERS: '0' };
  const ifaceEnv = { ...common, KEYS_DIR: keys.interface.dir, KEY_PASSPHRASE: keys.passphrase, HMAC_KEY: randomBytes(32).toString('hex'), PARTNERS_FILE: join(work, 'partners.json'), ...emr.serviceEnv() };
  const appEnv = { ...common, KEYS_DIR: keys.app.dir, KEY_PASSPHRASE: keys.passphrase, HMAC_KEY: randomBytes(32).toString('hex'), APP_TOKENS_FILE: join(work, 'app-tokens.json') };
  const stopped = (child: ChildProcess): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  let pairs = 0;
  /** Both services, freshly started (own audit trails): each direction is measured on its own pair, so neither inherits the other's heap. */
  const startPair = async () => {
    const n = pairs++;
    const iface = await spawnService('interface', { ...ifaceEnv, AUDIT_FILE: join(work, `i${n}.jsonl`) });
    const app = await spawnService('app', { ...appEnv, AUDIT_FILE: join(work, `a${n}.jsonl`) }).catch(async (err: unknown) => {
      await stopped(iface.child);
      throw err;
    });
    return { iface, app, stop: async () => void (await Promise.all([stopped(iface.child), stopped(app.child)])) };
  };
  type Pair = Awaited<ReturnType<typeof startPair>>;
  const relaySubmission = async ({ iface, app }: Pair, bytes: number, seed: number): Promise<number> => {
    const t0 = performance.now();
    const posted = await http(`${iface.url}/v1/submissions`, 'POST', { authorization: `Bearer ${partner}`, 'content-type': 'application/xml', 'content-length': bytes }, doc(bytes, seed));
    if (posted.status !== 202) throw new Error(`bench: submission answered ${posted.status}`);
    const id = (JSON.parse(posted.text) as { id: string }).id;
    const auth = { authorization: `Bearer ${reader}` };
    await waitUntil(async () => ((await http(`${app.url}/v1/inbox?limit=1000`, 'GET', auth)).text.includes(id) ? true : undefined), 'the record in the inbox');
    const read = await http(`${app.url}/v1/inbox/${id}`, 'GET', auth);
    const seconds = (performance.now() - t0) / 1000;
    if (read.status !== 200 || read.bytes !== bytes) throw new Error(`bench: reading the record gave ${read.status}, ${read.bytes} bytes`);
    await http(`${app.url}/v1/inbox/${id}/ack`, 'POST', auth);
    return seconds;
  };
  const relayChart = async ({ app }: Pair, bytes: number, seed: number): Promise<number> => {
    const t0 = performance.now();
    const posted = await http(`${app.url}/v1/chart-updates`, 'POST', { authorization: `Bearer ${writer}`, 'content-type': 'application/xml', 'content-length': bytes }, doc(bytes, seed));
    if (posted.status !== 202) throw new Error(`bench: chart update answered ${posted.status}`);
    const id = (JSON.parse(posted.text) as { id: string }).id;
    const delivered = await waitUntil(async () => emr.deliveries.get(id), 'the chart update at the EMR');
    const seconds = (performance.now() - t0) / 1000;
    if (delivered.bytes !== bytes) throw new Error(`bench: the EMR received ${delivered.bytes} bytes`);
    return seconds;
  };
  /**
   * One direction on a fresh pair: a 2 MiB warm-up (modules loaded, connections open), then each
   * size (the largest `largestRuns` times) with both peaks reset. Each peak is given over the RSS
   * just before the run (`rise`) and over the RSS after the warm-up, if lower (`fromWarm`: memory
   * an earlier run left to the garbage collector counts too).
   */
  const direction = async (relayOnce: (pair: Pair, bytes: number, seed: number) => Promise<number>) => {
    const pair = await startPair();
    const pids = { interface: pair.iface.child.pid!, app: pair.app.child.pid! };
    const rss = async (): Promise<RssRise> => ({ interface: await status(pids.interface, 'VmRSS'), app: await status(pids.app, 'VmRSS') });
    try {
      await relayOnce(pair, 2 * MiB, 0);
      const baseline = await rss();
      const runs: Array<{ mib: number; seconds: number; rise: RssRise; fromWarm: RssRise; before: RssRise }> = [];
      const plan = [...sizesMiB, ...Array<number>(Math.max(0, largestRuns - 1)).fill(sizesMiB.at(-1)!)];
      for (const [i, mib] of plan.entries()) {
        const now = await rss();
        await resetPeak(pids.interface);
        await resetPeak(pids.app);
        const seconds = await relayOnce(pair, mib * MiB, i + 1);
        const peak = { interface: await status(pids.interface, 'VmHWM'), app: await status(pids.app, 'VmHWM') };
        const over = (idle: RssRise): RssRise => ({ interface: round((peak.interface - idle.interface) / MiB, 1), app: round((peak.app - idle.app) / MiB, 1) });
        const before = { interface: round(now.interface / MiB, 1), app: round(now.app / MiB, 1) };
        runs.push({ mib, seconds, before, rise: over(now), fromWarm: over({ interface: Math.min(now.interface, baseline.interface), app: Math.min(now.app, baseline.app) }) });
      }
      return { runs, warm: { interface: round(baseline.interface / MiB, 1), app: round(baseline.app / MiB, 1) } };
    } finally {
      await pair.stop();
    }
  };
  try {
    const { runs: submissions, warm: submissionWarm } = await direction(relaySubmission);
    const { runs: charts, warm: chartWarm } = await direction(relayChart);
    const sizes: LargeSizeResult[] = [];
    for (const [i, mib] of sizesMiB.entries()) {
      const file = join(work, `doc-${mib}`);
      await pipeline(doc(mib * MiB, i + 1), createWriteStream(file));
      const gpgSeconds = await gpgStreamed(keys, file, work);
      await rm(file, { force: true });
      sizes.push({ mib, relayMiBps: round(mib / submissions[i]!.seconds, 1), chartMiBps: round(mib / charts[i]!.seconds, 1), gpgMiBps: gpgSeconds === undefined ? undefined : round(mib / gpgSeconds, 1) });
    }
    const largest = (runs: typeof submissions) => runs.slice(sizesMiB.length - 1);
    const highest = (rises: RssRise[]): RssRise => ({ interface: Math.max(...rises.map((r) => r.interface)), app: Math.max(...rises.map((r) => r.app)) });
    const rssRuns: LargeRssRun[] = [
      ...largest(submissions).map((r) => ({ direction: 'submission' as const, rise: r.rise, fromWarm: r.fromWarm, before: r.before })),
      ...largest(charts).map((r) => ({ direction: 'chart' as const, rise: r.rise, fromWarm: r.fromWarm, before: r.before })),
    ];
    return {
      sizes,
      rssRiseMiB: highest(largest(submissions).map((r) => r.rise)),
      chartRssRiseMiB: highest(largest(charts).map((r) => r.rise)),
      fromWarmMiB: { submission: highest(largest(submissions).map((r) => r.fromWarm)), chart: highest(largest(charts).map((r) => r.fromWarm)) },
      rssRuns,
      warmMiB: { submission: submissionWarm, chart: chartWarm },
      nodeFlags: nodeFlags(),
    };
  } finally {
    await emr.stop();
    // gpg-agent may still be removing its sockets.
    await rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

/** Prints the section's table. */
export function printLarge(r: LargeResult): void {
  console.log('\n(10) Large documents through S3, end to end, one at a time');
  console.log('     submissions: POST → seal → S3 + SQS → check → GET /v1/inbox/{id} streamed');
  console.log('     chart updates: POST → seal → S3 + SQS → check → streamed to the EMR endpoint');
  console.log('  size      submission MiB/s   chart update MiB/s   gpg sign+encrypt, decrypt MiB/s');
  for (const s of r.sizes) console.log(`  ${String(s.mib).padStart(4)} MiB  ${String(s.relayMiBps).padStart(16)}   ${String(s.chartMiBps).padStart(18)}   ${String(s.gpgMiBps ?? 'n/a').padStart(10)}`);
  const w = r.fromWarmMiB;
  const mib = r.sizes.at(-1)?.mib;
  console.log(`  services' V8 flags: ${r.nodeFlags.join(' ') || '(none)'}; RSS after the warm-up: submission pair interface ${r.warmMiB.submission.interface} / app ${r.warmMiB.submission.app} MiB, chart update pair ${r.warmMiB.chart.interface} / ${r.warmMiB.chart.app} MiB`);
  console.log(`  peak RSS rise during each ${mib} MiB run (limit 64 MiB each), over the RSS just before it / over the RSS after the warm-up:`);
  for (const run of r.rssRuns) {
    const name = run.direction === 'chart' ? 'chart update:' : 'submission:  ';
    console.log(`    ${name} interface ${run.rise.interface} / ${run.fromWarm.interface} MiB, app ${run.rise.app} / ${run.fromWarm.app} MiB   (RSS before: ${run.before.interface} / ${run.before.app} MiB)`);
  }
  console.log('  highest of those runs:');
  console.log(`    submission:   interface ${r.rssRiseMiB.interface} / ${w.submission.interface} MiB, app ${r.rssRiseMiB.app} / ${w.submission.app} MiB`);
  console.log(`    chart update: interface ${r.chartRssRiseMiB.interface} / ${w.chart.interface} MiB, app ${r.chartRssRiseMiB.app} / ${w.chart.app} MiB`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sqs = await startBenchSqs();
  const keys = await makeBenchKeys();
  try {
    const result = await benchLarge(sqs, keys);
    printLarge(result);
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/large-latest.json', JSON.stringify({ at: new Date().toISOString(), ...result }, null, 2));
  } finally {
    await sqs.stop();
    await keys.cleanup();
  }
}
