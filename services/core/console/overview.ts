import type { QueueDepth } from '../alerts/snapshot.ts';
import type { ReadinessCheck } from '../http/health.ts';
import type { TransportMetrics } from '../metrics/registry.ts';
import type { EmergencySwitch } from '../runtime/emergency.ts';
import { ratesPerMinute, type QueueSampler } from './sampler.ts';
import type { TrailVerification } from './trail.ts';

/** What the overview shows (HTML and JSON alike): counts, codes, names and times only, never PHI. */
export interface Overview {
  /** Service name. */
  service: string;
  /** Epoch ms it was assembled. */
  at: number;
  /** Depth of every queue, DLQ and quarantine queue at the last sample. */
  queues: QueueDepth[];
  /** Messages per minute received and sent, per logical queue. */
  rates: Record<string, { received: number; sent: number }>;
  /** Outcome of the last SQS read. */
  sqs: { ok: boolean; at?: number; code?: string };
  /** Messages this process quarantined since it started, by queue and reason code. */
  quarantinedByReason: Array<{ queue: string; reason: string; count: number }>;
  /** Messages this process dead-lettered since it started, by queue and reason code. */
  deadLetteredByReason: Array<{ queue: string; reason: string; count: number }>;
  /** App: records held and capacity. */
  inbox?: { size: number; capacity: number };
  /** Crypto: worker pool (threads alive) or in-thread. */
  crypto: { mode: 'pool' | 'in-thread'; threads?: number };
  /** The /readyz checks. */
  ready: Record<string, boolean>;
  /** Emergency switch: position, when, by whom (the free-text reason is not shown). */
  emergency: { active: boolean; changedAt: string; actor: string };
  /** Audit trail head and the last verification. */
  audit: { seq: number; hash: string; verification?: TrailVerification | undefined };
}

/** Where the overview reads from. */
export interface OverviewSources {
  /** Service name. */
  service: string;
  /** Queue samples (depth history and rates). */
  sampler: QueueSampler;
  /** Transport counters (quarantined, dead-lettered). */
  transport: TransportMetrics;
  /** Readiness checks, as /readyz runs them. */
  checks: Readonly<Record<string, ReadinessCheck>>;
  /** The service's crypto (a worker pool exposes `threads`). */
  crypto: object;
  /** Emergency switch. */
  emergency: EmergencySwitch;
  /** Audit trail head. */
  auditHead: () => { seq: number; hash: string };
  /** Last verification of the trail by the console. */
  verification: () => TrailVerification | undefined;
  /** App: inbox fill. */
  inbox?: (() => { size: number; capacity: number }) | undefined;
}

async function byReason(counter: TransportMetrics['quarantined']): Promise<Array<{ queue: string; reason: string; count: number }>> {
  return (await counter.get()).values
    .filter((v) => v.value > 0)
    .map((v) => ({ queue: String(v.labels.queue ?? ''), reason: String(v.labels.reason ?? ''), count: v.value }))
    .sort((a, b) => a.queue.localeCompare(b.queue) || b.count - a.count);
}

async function passes(check: ReadinessCheck): Promise<boolean> {
  try {
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000).unref());
    return (await Promise.race([Promise.resolve(check()).then((r) => r !== false), timeout])) === true;
  } catch {
    return false;
  }
}

/** Assembles the overview from the service's own state. */
export async function buildOverview(src: OverviewSources, now: number = Date.now()): Promise<Overview> {
  const last = src.sampler.samples.at(-1);
  const sqs = src.sampler.sqs;
  const ready: Record<string, boolean> = {};
  for (const [name, check] of Object.entries(src.checks)) ready[name] = await passes(check);
  const threads = (src.crypto as { threads?: unknown }).threads;
  const head = src.auditHead();
  const emergency = src.emergency.state;
  return {
    service: src.service,
    at: now,
    queues: [...(last?.depths ?? [])],
    rates: ratesPerMinute(src.sampler.samples),
    sqs: sqs ? { ok: sqs.ok, at: sqs.at, ...(sqs.code ? { code: sqs.code } : {}) } : { ok: false },
    quarantinedByReason: await byReason(src.transport.quarantined),
    deadLetteredByReason: await byReason(src.transport.deadLettered),
    ...(src.inbox ? { inbox: src.inbox() } : {}),
    crypto: typeof threads === 'number' ? { mode: 'pool', threads } : { mode: 'in-thread' },
    ready,
    emergency: { active: emergency.active, changedAt: emergency.changedAt, actor: emergency.actor },
    audit: { seq: head.seq, hash: head.hash, verification: src.verification() },
  };
}
