// One service (interface or app) alone in its own process, for (8) CPU per message and (5b)
// tail latency: it reports its CPU by kind of thread on request, over IPC. The app acknowledges every
// record as soon as it is held in the inbox and counts them; asked to, it reports when each
// record became visible (the monotonic clock, shared by the processes of the machine); asked to, it
// samples its own main thread with V8's profiler and answers the share of each part (bench/profileParts.ts).
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { loadAppConfig } from '../services/app/config.ts';
import { startAppService } from '../services/app/service.ts';
import type { Envelope } from '../services/core/envelope/envelope.ts';
import type { RelayCrypto } from '../services/core/relay/crypto.ts';
import { createLogger } from '../services/core/log/logger.ts';
import { loadInterfaceConfig } from '../services/interface/config.ts';
import { startInterfaceService } from '../services/interface/service.ts';
import { traceChild, type ChildTrace, type ChildTracer } from './latencyChildTrace.ts';
import { nullDestination } from './lib.ts';
import { partShares, type Part, type Profile } from './profileParts.ts';
import { threadCpu, type ThreadCpu } from './threadCpu.ts';

/** What the parent sends first: which service, and its environment (passphrase over IPC, never argv). */
export interface ServiceChildStart {
  /** The service to run. */
  service: 'interface' | 'app';
  /** Its environment. */
  env: Record<string, string>;
  /** The app reports each record's arrival in the inbox (`arrivals` messages). */
  reportArrivals?: boolean;
  /** Trace each envelope's steps in this process (bench/latencyChildTrace.ts), reported on a `trace` request. */
  trace?: boolean;
}

/** A record visible in the inbox: its envelope id and when, ms on the monotonic clock ({@link monotonicMs}). */
export type Arrival = [id: string, atMs: number];

/** Milliseconds on the system's monotonic clock (CLOCK_MONOTONIC: the same in every process of the machine). */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** What the child reports: `ready` once started (with the interface's port), then a `cpu` answer per `cpu` request. */
export type ServiceChildMessage =
  | { type: 'ready'; port?: number }
  | { type: 'cpu'; cpu: ThreadCpu; held: number; storeCalls: number; loop: { idle: number; active: number }; crypto: CryptoCalls }
  | { type: 'arrivals'; arrivals: Arrival[] }
  | { type: 'trace'; trace: ChildTrace }
  | { type: 'profile'; parts?: Record<Part, number> }
  | { type: 'error'; message: string };

/** The seals and opens a service made, split into receipts (small) and the rest; `inThread` when it has no worker pool. */
export interface CryptoCalls {
  /** Crypto on the main thread (no worker pool). */
  inThread: boolean;
  /** Seals of delivery receipts. */
  sealSmall: number;
  /** Other seals (submissions, chart updates). */
  seal: number;
  /** Opens of messages under {@link SMALL_ARMORED_CHARS} (receipts). */
  openSmall: number;
  /** Other opens. */
  open: number;
}

/** Armored messages shorter than this are counted as small (a receipt is about 1.2 KB, a 4 KiB submission about 6.6 KB). */
export const SMALL_ARMORED_CHARS = 3000;

/** Counts the seals and opens made through a service's crypto (wrapping its methods, as the tracer does). */
function countCrypto(rt: { crypto: RelayCrypto }): CryptoCalls {
  const calls: CryptoCalls = { inThread: typeof (rt.crypto as { threads?: unknown }).threads !== 'number', sealSmall: 0, seal: 0, openSmall: 0, open: 0 };
  const crypto = rt.crypto as { seal: RelayCrypto['seal']; open: RelayCrypto['open'] };
  const seal = crypto.seal.bind(rt.crypto);
  const open = crypto.open.bind(rt.crypto);
  crypto.seal = (envelope) => {
    if (envelope.kind === 'delivery.receipt') calls.sealSmall++;
    else calls.seal++;
    return seal(envelope);
  };
  crypto.open = (armored, check) => {
    if (armored.length < SMALL_ARMORED_CHARS) calls.openSmall++;
    else calls.open++;
    return open(armored, check);
  };
  return calls;
}

async function main(start: ServiceChildStart): Promise<void> {
  for (const [k, v] of Object.entries(start.env)) if (k.startsWith('AWS_')) process.env[k] = v;
  let held = 0;
  let storeCalls: () => number;
  let stop: () => Promise<void>;
  let port: number | undefined;
  let tracer: ChildTracer | undefined;
  let cryptoCalls: CryptoCalls;
  if (start.service === 'app') {
    const app = await startAppService(loadAppConfig(start.env), { logger: createLogger({ service: 'app', level: 'info', destination: nullDestination() }), listen: false });
    if (start.trace) tracer = traceChild('app', app.runtime, monotonicMs);
    cryptoCalls = countCrypto(app.runtime);
    const inbox = app.inbox;
    const hold = inbox.hold.bind(inbox);
    // Arrivals go to the parent in one IPC message per turn of the event loop.
    let arrivals: Arrival[] = [];
    const flush = (): void => {
      process.send!({ type: 'arrivals', arrivals } satisfies ServiceChildMessage);
      arrivals = [];
    };
    inbox.hold = (envelope: Envelope, signal: AbortSignal, now?: Date) => {
      tracer?.mark(envelope.id, 'app.visible');
      const outcome = hold(envelope, signal, now);
      held++;
      if (start.reportArrivals) {
        if (arrivals.length === 0) setImmediate(flush);
        arrivals.push([envelope.id, monotonicMs()]);
      }
      queueMicrotask(() => inbox.ack(envelope.id));
      return outcome;
    };
    storeCalls = () => app.runtime.state.calls;
    stop = () => app.stop();
  } else {
    const iface = await startInterfaceService(loadInterfaceConfig(start.env), { logger: createLogger({ service: 'interface', level: 'info', destination: nullDestination() }) });
    if (start.trace) tracer = traceChild('iface', iface.runtime, monotonicMs);
    cryptoCalls = countCrypto(iface.runtime);
    port = (iface.server.server.address() as { port: number }).port;
    storeCalls = () => iface.runtime.state.calls;
    stop = () => iface.stop();
  }
  let profiler: Session | undefined;
  process.on('message', (m: { type: 'cpu' | 'trace' | 'stop' | 'profile-start' | 'profile-stop' }) => {
    if (m.type === 'profile-start' || m.type === 'profile-stop') {
      const answer = m.type === 'profile-start' ? startProfile().then((s) => ((profiler = s), undefined)) : stopProfile(profiler, start.service);
      void answer.then(
        (parts) => process.send!({ type: 'profile', ...(parts ? { parts } : {}) } satisfies ServiceChildMessage),
        (err: unknown) => process.send!({ type: 'error', message: `profiler: ${err instanceof Error ? err.message : String(err)}` } satisfies ServiceChildMessage),
      );
    } else if (m.type === 'trace') process.send!({ type: 'trace', trace: tracer?.report() ?? { marks: [], gc: [], stalls: [], other: [] } } satisfies ServiceChildMessage);
    else if (m.type === 'cpu') {
      const { idle, active } = performance.eventLoopUtilization();
      process.send!({ type: 'cpu', cpu: threadCpu(), held, storeCalls: storeCalls(), loop: { idle, active }, crypto: { ...cryptoCalls } } satisfies ServiceChildMessage);
    }
    else void stop().finally(() => process.disconnect());
  });
  process.send!({ type: 'ready', ...(port === undefined ? {} : { port }) } satisfies ServiceChildMessage);
}

/** Starts V8's sampling profiler on this (the main) thread, a sample every millisecond. */
async function startProfile(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  return session;
}

/** Stops the profiler and answers each part's share of the main thread's busy time sampled. */
async function stopProfile(session: Session | undefined, service: string): Promise<Record<Part, number>> {
  if (!session) throw new Error('stopped before it was started');
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  // BENCH_PROFILE_DIR keeps each profile for bench/cpuprofileSummary.ts (function by function).
  const dir = process.env.BENCH_PROFILE_DIR;
  if (dir) await writeFile(join(dir, `${service}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
  return partShares(profile as unknown as Profile).shares;
}

process.once('message', (start: ServiceChildStart) => {
  main(start).catch((err: unknown) => {
    process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies ServiceChildMessage);
    process.exitCode = 1;
    process.disconnect();
  });
});
