import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { pollQueueDepths } from '../alerts/queueDepth.ts';
import type { QueueDepth } from '../alerts/snapshot.ts';
import { silentLogger } from '../log/logger.ts';
import type { TransportMetrics } from '../metrics/registry.ts';
import { errorCode } from '../transport/errors.ts';
import type { ResolvedQueue } from '../transport/queues.ts';

/** One sample of the service's queues: depths from SQS, and the transport counters (for rates). */
export interface QueueSample {
  /** Epoch ms. */
  at: number;
  /** Depth of every queue, DLQ and quarantine queue; undefined when SQS could not be read. */
  depths?: QueueDepth[] | undefined;
  /** Messages received and sent per logical queue since the process started. */
  counters: Record<string, { received: number; sent: number }>;
}

/** The last hour of samples, and the outcome of the last SQS read. */
export interface QueueSampler {
  /** Samples oldest first, covering at most the last hour. */
  readonly samples: readonly QueueSample[];
  /** Outcome of the last SQS read: when, and the error code when it failed. */
  readonly sqs: { at: number; ok: boolean; code?: string } | undefined;
  /** Takes one sample now (also run every interval). */
  sample(): Promise<QueueSample>;
  /** Stops the timer. */
  stop(): void;
}

/** Options for {@link startQueueSampler}. */
export interface QueueSamplerOptions {
  /** SQS client. */
  sqs: SQSClient;
  /** The queues whose depths are sampled (with their DLQ and quarantine queues). */
  queues: Readonly<Record<string, ResolvedQueue>>;
  /** Logical queues whose received and sent counters are sampled (default: those of `queues`). */
  counters?: readonly string[];
  /** The service's transport metrics (received and sent counters). */
  transport: TransportMetrics;
  /** Interval between samples, ms. */
  intervalMs: number;
  /** How much history is kept, ms (an hour by default). */
  windowMs?: number;
  /** Logger; silent by default. */
  logger?: Logger;
  /** Clock (tests). */
  now?: () => number;
}

async function counterByQueue(counter: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await counter.get()).values) {
    const q = String(v.labels.queue ?? '');
    out.set(q, (out.get(q) ?? 0) + v.value);
  }
  return out;
}

/** Starts sampling queue depths every interval, keeping the last hour for the console's chart and rates. */
export function startQueueSampler(options: QueueSamplerOptions): QueueSampler {
  const now = options.now ?? Date.now;
  const windowMs = options.windowMs ?? 3_600_000;
  const log = options.logger ?? silentLogger;
  const samples: QueueSample[] = [];
  let sqs: QueueSampler['sqs'];
  const take = async (): Promise<QueueSample> => {
    const at = now();
    let depths: QueueDepth[] | undefined;
    try {
      depths = await pollQueueDepths(options.sqs, options.queues, AbortSignal.timeout(10_000));
      sqs = { at, ok: true };
    } catch (err) {
      sqs = { at, ok: false, code: errorCode(err) };
      log.warn({ code: sqs.code }, 'console: queue depths not read');
    }
    const [received, sent] = await Promise.all([counterByQueue(options.transport.received), counterByQueue(options.transport.sent)]);
    const counters: QueueSample['counters'] = {};
    for (const q of options.counters ?? Object.keys(options.queues)) counters[q] = { received: received.get(q) ?? 0, sent: sent.get(q) ?? 0 };
    const s: QueueSample = { at, depths, counters };
    samples.push(s);
    while (samples.length > 0 && samples[0]!.at < at - windowMs) samples.shift();
    return s;
  };
  const timer = setInterval(() => void take().catch(() => undefined), options.intervalMs);
  timer.unref();
  void take().catch(() => undefined);
  return {
    samples,
    get sqs() {
      return sqs;
    },
    sample: take,
    stop: () => clearInterval(timer),
  };
}

/** Messages per minute between the last two samples, per logical queue (received and sent). */
export function ratesPerMinute(samples: readonly QueueSample[]): Record<string, { received: number; sent: number }> {
  const out: Record<string, { received: number; sent: number }> = {};
  const last = samples.at(-1);
  if (!last) return out;
  // The rate over the last few minutes (or what there is of them), so one quiet sample does not read as zero.
  const first = samples.find((s) => s.at >= last.at - 5 * 60_000) ?? last;
  const minutes = (last.at - first.at) / 60_000;
  for (const [q, c] of Object.entries(last.counters)) {
    const before = first.counters[q] ?? { received: 0, sent: 0 };
    out[q] = minutes > 0
      ? { received: round((c.received - before.received) / minutes), sent: round((c.sent - before.sent) / minutes) }
      : { received: 0, sent: 0 };
  }
  return out;
}

const round = (n: number): number => Math.round(Math.max(0, n) * 10) / 10;
