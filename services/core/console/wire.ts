import type { FastifyInstance } from 'fastify';
import type { ConsoleConfig } from '../config/console.ts';
import type { TokenEntry, TokenStore } from '../http/auth.ts';
import type { ReadinessCheck } from '../http/health.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import { consolePlugin } from './plugin.ts';
import { queuePages } from './queuePages.ts';
import { startQueueSampler } from './sampler.ts';
import { createConsoleSessions } from './sessions.ts';
import { verifyTrail, type TrailVerification } from './trail.ts';

/** What a service adds to its runtime for the console. */
export interface ConsoleSources {
  /** Admin credentials (tokens with role `admin`). */
  tokens: TokenStore<TokenEntry>;
  /** The /readyz checks. */
  checks: Readonly<Record<string, ReadinessCheck>>;
  /** App: inbox fill. */
  inbox?: () => { size: number; capacity: number };
  /** The queues the service consumes: their depths are charted and their DLQ and quarantine are its to act on. */
  consumed: readonly LogicalQueue[];
}

/**
 * Serves the operator console at /console on `server` (before it listens) when CONSOLE_ENABLED:
 * sessions in the service's state table, a queue sampler for the overview's last hour (stopped
 * when the server closes), and a first verification of the audit trail in the background.
 */
export async function registerConsole<Q extends LogicalQueue>(server: FastifyInstance, rt: Runtime<Q>, config: ConsoleConfig, sources: ConsoleSources): Promise<void> {
  if (!config.CONSOLE_ENABLED) return;
  // Only the consumed queues: the service's IAM policy lets it read those (not the ones it only sends to).
  const consumed = Object.fromEntries(sources.consumed.map((q) => [q, rt.queues[q as Q]]));
  const sampler = startQueueSampler({ sqs: rt.sqs, queues: consumed, counters: Object.keys(rt.queues), transport: rt.metrics.transport, intervalMs: config.CONSOLE_SAMPLE_SECONDS * 1000, logger: rt.logger });
  let verification: TrailVerification | undefined;
  const verify = async (): Promise<TrailVerification> => {
    verification = await verifyTrail({
      file: rt.audit.file,
      checkpointFile: rt.checkpointStore.file,
      service: rt.service,
      keys: [rt.keys.own.current, ...rt.keys.own.older].map((k) => k.toPublic()),
    }).catch((err: unknown) => ({ at: Date.now(), ok: false, summary: `cannot verify (${(err as { code?: string }).code ?? 'error'})` }));
    return verification;
  };
  void verify();
  server.addHook('onClose', async () => sampler.stop());
  await server.register(consolePlugin, {
    service: rt.service,
    tokens: sources.tokens,
    audit: rt.audit,
    auditFile: rt.audit.file,
    failures: rt.authFailures,
    sessions: createConsoleSessions({ table: rt.state, idleMs: config.CONSOLE_IDLE_TIMEOUT_SECONDS * 1000, maxMs: config.CONSOLE_SESSION_MAX_SECONDS * 1000 }),
    idleSeconds: config.CONSOLE_IDLE_TIMEOUT_SECONDS,
    maxSeconds: config.CONSOLE_SESSION_MAX_SECONDS,
    overview: {
      service: rt.service,
      sampler,
      transport: rt.metrics.transport,
      checks: sources.checks,
      crypto: rt.crypto,
      emergency: rt.emergency,
      auditHead: () => rt.audit.head(),
      verification: () => verification,
      ...(sources.inbox ? { inbox: sources.inbox } : {}),
    },
    verifyTrail: verify,
    queuePages: queuePages({ sqs: rt.sqs, queues: consumed, audit: rt.audit }),
  });
}
