import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createTokenStore } from '../core/http/auth.ts';
import type { ServiceKeys } from '../core/keys/load.ts';
import type { RelayCrypto } from '../core/relay/crypto.ts';
import { createIdempotency } from '../core/relay/idempotency.ts';
import { MAX_PAYLOAD_BYTES } from '../core/relay/outbound.ts';
import { startRuntime, type Runtime } from '../core/runtime/runtime.ts';
import type { Consumer } from '../core/transport/consumer.ts';
import { createInboundConsumer } from '../core/runtime/inboundConsumer.ts';
import { createOutboundPath } from '../core/runtime/outboundPath.ts';
import { tlsOf } from '../core/runtime/serviceServer.ts';
import type { AppConfig } from './config.ts';
import { createApplyLedger } from '../core/state/applyLedger.ts';
import { inboxEffect } from './inbox/effect.ts';
import { Inbox } from './inbox/inbox.ts';
import { buildAppServer } from './server.ts';
import { createSms } from './smsWiring.ts';

/** The queues the app service resolves at start (the redaction queue only when SMS is configured). */
export const APP_QUEUES = ['interface-to-app', 'app-to-interface', 'app-sms-redaction'] as const;

/** One of {@link APP_QUEUES}. */
export type AppQueues = (typeof APP_QUEUES)[number];

/** A running app service. */
export interface AppService {
  /** The HTTP server. */
  server: FastifyInstance;
  /** The inbox. */
  inbox: Inbox;
  /** Consumers: `interface-to-app` (inbox), and `app-sms-redaction` when SMS is configured. */
  consumers: Consumer[];
  /** Keys, audit, SQS, metrics, emergency switch. */
  runtime: Runtime<AppQueues>;
  /** Re-reads the API tokens file (SIGHUP). */
  reload(): void;
  /** Graceful stop: close HTTP, release held records, drain within the deadline, close. */
  stop(): Promise<void>;
}

/** Options for {@link startAppService}. */
export interface StartAppOptions {
  /** Logger (tests capture lines); built from LOG_LEVEL otherwise. */
  logger?: Logger;
  /** Replaces the in-thread crypto (worker pool). */
  crypto?: (keys: ServiceKeys) => RelayCrypto;
  /** Listen on PORT/HOST; false for `inject()`-only tests. */
  listen?: boolean;
}

/** Longest a held inbox record delays shutdown: it cannot finish without an ack, so it is released. */
const INBOX_RELEASE_DEADLINE_MS = 2_000;

/** Wires and starts the app service from a validated configuration. */
export async function startAppService(config: AppConfig, options: StartAppOptions = {}): Promise<AppService> {
  const queues: readonly AppQueues[] = config.SIGNALWIRE_PROJECT_ID ? APP_QUEUES : APP_QUEUES.filter((q) => q !== 'app-sms-redaction');
  const rt = (await startRuntime({
    service: 'app',
    config,
    queues,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.crypto ? { crypto: options.crypto } : {}),
  })) as Runtime<AppQueues>;
  const log = rt.logger;
  try {
    const tokens = createTokenStore({ file: config.APP_TOKENS_FILE });
    const inbox = new Inbox(config.INBOX_CAPACITY);

    const outbound = createOutboundPath(rt, { queue: 'app-to-interface', to: 'interface', fifo: config.QUEUE_FIFO });
    const inboxConsumer = createInboundConsumer(rt, config, {
      queue: 'interface-to-app',
      kinds: ['care.submission'],
      // Backpressure: at most INBOX_CAPACITY records held; beyond that messages wait in SQS.
      maxInFlight: config.INBOX_CAPACITY,
      effect: inboxEffect(inbox, {
        ledger: createApplyLedger({ table: rt.state, holder: rt.holder, leaseMs: config.VISIBILITY_TIMEOUT_SECONDS * 1000, ttlSeconds: rt.stateTtlSeconds }),
        renewMs: config.HEARTBEAT_INTERVAL_SECONDS * 1000,
        logger: log,
      }),
    });

    const sms = config.SIGNALWIRE_PROJECT_ID ? createSms(config, rt) : undefined;

    const server = await buildAppServer({
      logger: log,
      tokens,
      inbox,
      outbound,
      idempotency: createIdempotency({ table: rt.state, ttlSeconds: rt.stateTtlSeconds }),
      audit: rt.audit,
      emergency: rt.emergency,
      registry: rt.metrics.registry,
      checks: { queue: () => inboxConsumer.ready(), keys: () => rt.keys.own.current.isPrivate() },
      bodyLimit: config.CHART_UPDATE_MAX_BODY_BYTES || MAX_PAYLOAD_BYTES,
      ...(sms ? { smsRoutes: sms.routes, smsWebhook: sms.webhook } : {}),
      tls: tlsOf(config),
      publicBaseUrl: config.PUBLIC_BASE_URL,
      trustProxy: config.TRUST_PROXY,
    });

    const consumers = [inboxConsumer, ...(sms ? [sms.consumer] : [])];
    rt.emergency.onChange((active) => consumers.forEach((c) => (active ? c.pause() : c.resume())));
    for (const c of consumers) {
      c.start();
      if (rt.emergency.active) c.pause();
    }
    if (options.listen ?? true) await server.listen({ port: config.PORT, host: config.HOST });
    else await server.ready();

    return {
      server,
      inbox,
      consumers,
      runtime: rt,
      reload() {
        tokens.reload();
        log.info({ tokens: tokens.size }, 'tokens reloaded');
        void rt.audit.record({ action: 'config.reloaded', actor: 'app', resourceType: 'tokens', outcome: 'success' });
      },
      async stop() {
        await server.close();
        await Promise.all([
          inboxConsumer.stop({ deadlineMs: Math.min(config.SHUTDOWN_DEADLINE_MS, INBOX_RELEASE_DEADLINE_MS) }),
          ...(sms ? [sms.consumer.stop({ deadlineMs: config.SHUTDOWN_DEADLINE_MS })] : []),
        ]);
        await rt.close();
      },
    };
  } catch (err) {
    await rt.close();
    throw err;
  }
}
