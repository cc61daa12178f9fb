import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createTokenStore, type TokenStore } from '../core/http/auth.ts';
import { createIdempotency } from '../core/relay/idempotency.ts';
import { createDeliveryLedger } from '../core/state/deliveryLedger.ts';
import { MAX_PAYLOAD_BYTES } from '../core/relay/outbound.ts';
import type { RelayCrypto } from '../core/relay/crypto.ts';
import type { ServiceKeys } from '../core/keys/load.ts';
import { startRuntime, type Runtime } from '../core/runtime/runtime.ts';
import type { Consumer } from '../core/transport/consumer.ts';
import { createInboundConsumer } from '../core/runtime/inboundConsumer.ts';
import { createOutboundPath } from '../core/runtime/outboundPath.ts';
import { tlsOf } from '../core/runtime/serviceServer.ts';
import type { InterfaceConfig } from './config.ts';
import { emrDeliveryEffect } from './delivery/handler.ts';
import { createEmrClient } from './delivery/emrClient.ts';
import { partnerEntrySchema, type PartnerEntry } from './intake/partners.ts';
import { buildInterfaceServer } from './server.ts';

/** The queues the interface service resolves at start: it sends on the first, consumes the second. */
export const INTERFACE_QUEUES = ['interface-to-app', 'app-to-interface'] as const;

/** A running interface service. */
export interface InterfaceService {
  /** The HTTP server (listening once `start` resolved). */
  server: FastifyInstance;
  /** The `app-to-interface` consumer (EMR delivery). */
  consumer: Consumer;
  /** Keys, audit, SQS, metrics, emergency switch. */
  runtime: Runtime<'interface-to-app' | 'app-to-interface'>;
  /** Re-reads the partners and admin token files (SIGHUP). */
  reload(): void;
  /** Graceful stop: close HTTP, drain the consumer within the deadline, close the runtime. */
  stop(): Promise<void>;
}

/** Options for {@link startInterfaceService}. */
export interface StartInterfaceOptions {
  /** Logger (tests capture lines); built from LOG_LEVEL otherwise. */
  logger?: Logger;
  /** Replaces the in-thread crypto (worker pool). */
  crypto?: (keys: ServiceKeys) => RelayCrypto;
  /** Listen on PORT/HOST; false for `inject()`-only tests. */
  listen?: boolean;
}

/** Wires and starts the interface service from a validated configuration. */
export async function startInterfaceService(config: InterfaceConfig, options: StartInterfaceOptions = {}): Promise<InterfaceService> {
  const rt = await startRuntime({
    service: 'interface',
    config,
    queues: INTERFACE_QUEUES,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.crypto ? { crypto: options.crypto } : {}),
  });
  const log = rt.logger;
  try {
    const partners = createTokenStore<PartnerEntry>({ file: config.PARTNERS_FILE, entrySchema: partnerEntrySchema }) as TokenStore<PartnerEntry>;
    const admins = config.ADMIN_TOKENS_FILE ? createTokenStore({ file: config.ADMIN_TOKENS_FILE }) : undefined;

    const outbound = createOutboundPath(rt, { queue: 'interface-to-app', to: 'app', fifo: config.QUEUE_FIFO });
    const emr = createEmrClient({ url: config.EMR_URL, timeoutMs: config.EMR_TIMEOUT_MS, ...(config.EMR_AUTH_TOKEN ? { authToken: config.EMR_AUTH_TOKEN } : {}) });
    const consumer = createInboundConsumer(rt, config, {
      queue: 'app-to-interface',
      kinds: ['chart.update'],
      maxInFlight: config.EMR_CONCURRENCY,
      effect: emrDeliveryEffect({
        emr,
        audit: rt.audit,
        logger: log,
        ledger: createDeliveryLedger({ table: rt.state, holder: rt.holder, leaseMs: config.EMR_TIMEOUT_MS + 5_000, ttlSeconds: rt.stateTtlSeconds }),
      }),
    });

    const server = await buildInterfaceServer({
      logger: log,
      partners,
      ...(admins ? { admins } : {}),
      outbound,
      idempotency: createIdempotency({ table: rt.state, ttlSeconds: rt.stateTtlSeconds }),
      audit: rt.audit,
      emergency: rt.emergency,
      registry: rt.metrics.registry,
      checks: { queue: () => consumer.ready(), keys: () => rt.keys.own.current.isPrivate() },
      bodyLimit: config.INTAKE_MAX_BODY_BYTES || MAX_PAYLOAD_BYTES,
      tls: tlsOf(config),
      publicBaseUrl: config.PUBLIC_BASE_URL,
      trustProxy: config.TRUST_PROXY,
    });

    rt.emergency.onChange((active) => (active ? consumer.pause() : consumer.resume()));
    consumer.start();
    if (rt.emergency.active) consumer.pause();
    if (options.listen ?? true) await server.listen({ port: config.PORT, host: config.HOST });
    else await server.ready();

    return {
      server,
      consumer,
      runtime: rt,
      reload() {
        partners.reload();
        admins?.reload();
        log.info({ partners: partners.size }, 'tokens reloaded');
        void rt.audit.record({ action: 'config.reloaded', actor: 'interface', resourceType: 'tokens', outcome: 'success' });
      },
      async stop() {
        await server.close();
        await consumer.stop({ deadlineMs: config.SHUTDOWN_DEADLINE_MS });
        await rt.close();
      },
    };
  } catch (err) {
    await rt.close();
    throw err;
  }
}
