import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../audit/types.ts';
import type { ReadinessCheck } from '../http/health.ts';
import type { ServiceKeys } from '../keys/load.ts';
import { silentLogger } from '../log/logger.ts';
import { errorCode } from '../transport/errors.ts';
import type { ResolvedQueue } from '../transport/queues.ts';
import { evaluate } from './evaluate.ts';
import type { FailingSince } from './failingSince.ts';
import { FloodControl, type AlertNotification } from './floodControl.ts';
import { createAlertGauges } from './gauges.ts';
import { oldestAgeSeconds, pollQueueDepths } from './queueDepth.ts';
import type { AlertSnapshot, KeyExpiry } from './snapshot.ts';
import type { AlertNotifier } from './snsNotifier.ts';
import type { AlertThresholds } from './thresholds.ts';

/** Where the monitor reads a service's health from; all of it metadata. */
export interface AlertSources {
  /** SQS client for the depth poll. */
  sqs: SQSClient;
  /** The service's queues (each with its DLQ and quarantine queue). */
  queues: Readonly<Record<string, ResolvedQueue>>;
  /** The logical queues this service consumes: their oldest waiting message is watched. */
  consumed: readonly string[];
  /** SentTimestamp (epoch ms) of the last message the consumer of `queue` received. */
  lastReceivedSentAt: (queue: string) => Promise<number | undefined>;
  /** Emergency mode is on. */
  emergency: () => boolean;
  /** Own and pinned peer keys. */
  keys: ServiceKeys;
  /** The same readiness checks as /readyz. */
  readiness: Readonly<Record<string, ReadinessCheck>>;
  /** When the last audit write failed (epoch ms), if ever. */
  auditFailureAt: () => number | undefined;
  /** Interface: EMR delivery failures. */
  emr?: FailingSince | undefined;
  /** App: inbox fill. */
  inbox?: (() => { size: number; capacity: number }) | undefined;
}

/** Options for {@link startAlertMonitor}. */
export interface AlertMonitorOptions {
  /** What to watch. */
  sources: AlertSources;
  /** Where each condition starts. */
  thresholds: AlertThresholds;
  /** Evaluation interval, ms. */
  intervalMs: number;
  /** Reminder interval while a condition holds, ms (0 = none). */
  reminderMs: number;
  /** A condition clears after not holding for this long, ms. */
  clearAfterMs: number;
  /** Metrics registry for the health gauges. */
  registry: Registry;
  /** Built-in notifications (SNS, which audits each one sent); without it only the gauges are kept. */
  notifier?: AlertNotifier | undefined;
  /** Service logger. */
  logger?: Logger;
  /** Clock (tests). */
  now?: () => number;
}

/** A running monitor. */
export interface AlertMonitor {
  /** Takes one snapshot, updates the gauges, decides and queues notifications; returns them. */
  tick(): Promise<AlertNotification[]>;
  /** The last snapshot taken. */
  readonly last: AlertSnapshot | undefined;
  /** Stops the timer and gives pending notifications up to `deadlineMs` to go out. */
  stop(deadlineMs?: number): Promise<void>;
}

async function keyExpiries(keys: ServiceKeys): Promise<KeyExpiry[]> {
  const at = async (role: KeyExpiry['role'], key: { getExpirationTime(): Promise<Date | number | null>; getFingerprint(): string }): Promise<KeyExpiry> => {
    const t = await key.getExpirationTime().catch(() => null);
    const expiresAt = t instanceof Date ? t.getTime() : t === null ? 0 : Infinity;
    return { role, fingerprint: key.getFingerprint().toUpperCase(), expiresAt };
  };
  return Promise.all([at('own', keys.own.current), ...keys.peers.pinned.map((p) => at('peer', p.key))]);
}

async function allReady(checks: Readonly<Record<string, ReadinessCheck>>): Promise<boolean> {
  const results = await Promise.all(
    Object.values(checks).map(async (check) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 2000)));
      try {
        return await Promise.race([Promise.resolve(check()).then((r) => r !== false, () => false), timeout]);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return results.every(Boolean);
}

/**
 * Watches one service: every `intervalMs` it takes a snapshot (queue depths, oldest
 * waiting message, EMR failures, inbox fill, emergency mode, audit writes, key expiry,
 * readiness), exports it as gauges for Prometheus, evaluates the same conditions as the
 * shipped alert rules, and sends the state changes through flood control: one
 * notification when a condition starts, one when it clears, reminders while it holds.
 */
export async function startAlertMonitor(options: AlertMonitorOptions): Promise<AlertMonitor> {
  const { sources } = options;
  const log = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const startedAt = now();
  const gauges = createAlertGauges(options.registry, { emr: sources.emr !== undefined, inbox: sources.inbox !== undefined });
  const flood = new FloodControl({ reminderMs: options.reminderMs, clearAfterMs: options.clearAfterMs });
  const keys = await keyExpiries(sources.keys);
  let notReadySince: number | undefined;
  let last: AlertSnapshot | undefined;
  let running: Promise<AlertNotification[]> | undefined;
  let stopped = false;

  async function snapshot(): Promise<AlertSnapshot> {
    const at = now();
    let queues: AlertSnapshot['queues'];
    try {
      queues = await pollQueueDepths(sources.sqs, sources.queues);
    } catch (err) {
      log.warn({ code: errorCode(err) }, 'queue depth poll failed');
    }
    let oldest: Record<string, number> | undefined;
    if (queues) {
      oldest = {};
      for (const queue of sources.consumed) {
        const visible = queues.find((q) => q.queue === queue && q.role === 'main')?.visible ?? 0;
        oldest[queue] = oldestAgeSeconds(visible, await sources.lastReceivedSentAt(queue), startedAt, at);
      }
    }
    const ready = await allReady(sources.readiness);
    if (ready) notReadySince = undefined;
    else notReadySince ??= at;
    const auditFailure = sources.auditFailureAt();
    return {
      at,
      queues,
      oldestAgeSeconds: oldest,
      emr: sources.emr ? { failing: sources.emr.failing, seconds: sources.emr.seconds(at) } : undefined,
      inbox: sources.inbox?.(),
      emergency: sources.emergency(),
      auditFailureAgeSeconds: auditFailure === undefined ? Infinity : Math.max(0, (at - auditFailure) / 1000),
      keys,
      ready,
      notReadySeconds: notReadySince === undefined ? 0 : (at - notReadySince) / 1000,
    };
  }

  async function tickOnce(): Promise<AlertNotification[]> {
    const s = await snapshot();
    last = s;
    const notifications = flood.update(evaluate(s, options.thresholds), s.at);
    gauges.update(s, flood.active);
    for (const n of notifications) {
      log.warn({ alert: n.condition, state: n.state, subject: n.subject, severity: n.severity }, 'alert');
      options.notifier?.notify(n);
    }
    return notifications;
  }

  function tick(): Promise<AlertNotification[]> {
    running ??= tickOnce().finally(() => (running = undefined));
    return running;
  }

  const timer = setInterval(() => {
    if (stopped) return;
    tick().catch((err: unknown) => log.error({ code: errorCode(err) }, 'alert evaluation failed'));
  }, options.intervalMs);
  timer.unref();
  await tick();

  return {
    tick,
    get last() {
      return last;
    },
    async stop(deadlineMs = 2000) {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
      const left = (await options.notifier?.close(deadlineMs)) ?? 0;
      if (left > 0) log.warn({ pending: left }, 'alert notifications not sent at shutdown');
    },
  };
}

/** Audits a notification once it has been sent (action `alert.notified`). */
export function auditNotification(audit: AuditSink, service: string, n: AlertNotification): Promise<void> {
  return audit.record({
    action: 'alert.notified',
    actor: service,
    resourceType: 'alert',
    resourceId: n.condition,
    outcome: 'success',
    details: { state: n.state, subject: n.subject, severity: n.severity },
  });
}
