// Shared helpers of the benchmark: payloads, keys, timed loops, percentiles, a log sink.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildEnvelope, type Envelope } from '../services/core/envelope/envelope.ts';
import { writeServiceKeyFolder } from '../services/core/keys/files.ts';
import { generateServiceKey } from '../services/core/keys/generate.ts';
import { loadServiceKeys, type ServiceKeys } from '../services/core/keys/load.ts';

/** Payload sizes every section measures. */
export const SIZES = [4096, 65536] as const;

/** A FHIR JSON resource of exactly `bytes` bytes (random, incompressible note text). */
export function fhirPayload(bytes: number): Buffer {
  const head = `{"resourceType":"Observation","id":"${randomBytes(8).toString('hex')}","status":"final","note":[{"text":"`;
  const tail = '"}]}';
  const fill = bytes - head.length - tail.length;
  if (fill < 0) throw new Error(`payload of ${bytes} bytes is too small`);
  const text = randomBytes(Math.ceil((fill * 3) / 4) + 3).toString('base64').replace(/[+/=]/g, 'x').slice(0, fill);
  return Buffer.from(head + text + tail, 'utf8');
}

/** A submission envelope as the interface builds it, around a payload of `bytes` bytes. */
export function submissionEnvelope(bytes: number, payload = fhirPayload(bytes)): Envelope {
  return buildEnvelope({
    kind: 'care.submission',
    from: 'interface',
    to: 'app',
    queue: 'interface-to-app',
    partner: 'bench-partner',
    contentType: 'application/fhir+json',
    body: payload.toString('utf8'),
  });
}

/** Both services' key folders in a temp dir, as `care-relay keys init` lays them out. */
export interface BenchKeys {
  /** The temp root. */
  root: string;
  /** Passphrase of both private keys (random, this run only). */
  passphrase: string;
  /** The app's key folder and loaded keys. */
  app: { dir: string; fingerprint: string; keys: ServiceKeys };
  /** The interface's key folder and loaded keys. */
  interface: { dir: string; fingerprint: string; keys: ServiceKeys };
  /** Removes the folders. */
  cleanup(): Promise<void>;
}

/** Generates a fresh key pair for both services (Curve25519, as in production). */
export async function makeBenchKeys(): Promise<BenchKeys> {
  const passphrase = `bench-${randomBytes(12).toString('hex')}`;
  const root = await mkdtemp(join(tmpdir(), 'crb-keys-'));
  const [app, iface] = await Promise.all([generateServiceKey({ service: 'app', passphrase }), generateServiceKey({ service: 'interface', passphrase })]);
  const side = async (service: 'app' | 'interface', mine: typeof app, other: typeof app, otherName: string) => {
    const dir = join(root, service);
    await writeServiceKeyFolder({ dir, privateKey: mine.privateKey, publicKey: mine.publicKey, peers: [{ name: otherName, publicKey: other.publicKey }] });
    return { dir, fingerprint: mine.fingerprint, keys: await loadServiceKeys({ dir, passphrase }) };
  };
  return {
    root,
    passphrase,
    app: await side('app', app, iface, 'interface'),
    interface: await side('interface', iface, app, 'app'),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** What a timed loop measured. */
export interface Throughput {
  /** Operations completed. */
  ops: number;
  /** Wall-clock seconds. */
  seconds: number;
  /** ops / seconds. */
  perSecond: number;
  /** Mean latency of one operation, ms. */
  meanMs: number;
  /** Process CPU (all threads) over wall time: cores busy on average. */
  cores: number;
  /** Process CPU (all threads, libuv's pool included) per operation, µs: what holds on a busy machine. */
  cpuUsPerOp: number;
}

/**
 * Submissions sent to the services before (5), (5b) and (8) measure them, at each size. V8 compiles
 * a service's hot functions in tiers as they are called (Maglev, then TurboFan); with the earlier
 * warm-up of 128 submissions, the JIT was still compiling hundreds of functions while (8) measured,
 * on the main thread and V8's helper threads, and the CPU per message fell over the next ~3,000
 * (docs/benchmarks.md, "Steady state before measuring"). A service in production runs warm.
 */
export const SERVICE_WARMUP = 3000;

/**
 * A warm-up: runs `op` `count` times, `concurrency` at a time, free running (not in lockstep), for
 * at most 10 minutes; resolves with how many ran (fewer than `count` only if the time ran out).
 */
export async function warmUp(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  return (await timed({ durationMs: 600_000, maxOps: count, concurrency, warmup: 0 }, op)).ops;
}

/** Options of {@link timed}. */
export interface TimedOptions {
  /** Stop starting new operations after this long. */
  durationMs: number;
  /** ...or after this many operations, whichever comes first. */
  maxOps: number;
  /** Operations in flight at once. */
  concurrency: number;
  /** Operations run (and not counted) before the clock starts. */
  warmup?: number;
  /** Called when the clock starts, after the warm-up. */
  onStart?: () => void;
}

/** Runs `op` with bounded concurrency for a bounded time and reports the throughput. */
export async function timed(options: TimedOptions, op: (i: number) => Promise<unknown>): Promise<Throughput> {
  const warm = options.warmup ?? options.concurrency;
  for (let i = 0; i < warm; i += options.concurrency) await Promise.all(Array.from({ length: Math.min(options.concurrency, warm - i) }, (_, k) => op(i + k)));
  let started = 0;
  let done = 0;
  let busyMs = 0;
  options.onStart?.();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + options.durationMs;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (started < options.maxOps && performance.now() < deadline) {
        const i = started++;
        const s = performance.now();
        await op(i);
        busyMs += performance.now() - s;
        done++;
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  return { ops: done, seconds: ms / 1000, perSecond: done / (ms / 1000), meanMs: busyMs / Math.max(1, done), cores: cpuUs / 1000 / ms, cpuUsPerOp: cpuUs / Math.max(1, done) };
}

/** The p-th percentile (0-100) of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A pino destination that drops every line (the services log at info, as in production, to nowhere). */
export function nullDestination(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rounds for the report. */
export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * Whether this bench runs openpgp.js's Ed25519, X25519 and AES-KW calls on the calling thread, as the
 * services do unless `CRYPTO_INLINE` is false (envelope/inlineSubtle.ts). Read from this process's own
 * `CRYPTO_INLINE`, which the services the bench starts read too (`commonEnv`), so that
 * `CRYPTO_INLINE=false npm run bench` measures everything with Node's WebCrypto jobs instead.
 */
export function benchInline(): boolean {
  const value = process.env.CRYPTO_INLINE;
  if (value === undefined || value === '' || ['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new Error(`CRYPTO_INLINE: expected true or false, not "${value}"`);
}
