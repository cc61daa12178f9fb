import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createTokenStore, type TokenStore } from '../core/http/auth.ts';
import { createIdempotency } from '../core/relay/idempotency.ts';
import { createDeliveryLedger } from '../core/state/deliveryLedger.ts';
import { MAX_PAYLOAD_BYTES } from '../core/relay/outbound.ts';
import type { RelayCrypto } from '../core/relay/crypto.ts';
import type { ServiceKeys } from '../core/keys/load.ts';
import { FailingSince } from '../core/alerts/failingSince.ts';
import type { AlertMonitor } from '../core/alerts/monitor.ts';
import { startServiceAlerts } from '../core/runtime/alerts.ts';
import { startRuntime, type Runtime } from '../core/runtime/runtime.ts';
import type { Consumer } from '../core/transport/consumer.ts';
import { startServiceLifecycle } from '../core/runtime/lifecycle.ts';
import { createInboundConsumer } from '../core/runtime/inboundConsumer.ts';
import { createOutboundPath } from '../core/runtime/outboundPath.ts';
import { openLargeObjects } from '../core/runtime/largeObjects.ts';
import { reloadAll } from '../core/runtime/reload.ts';
import { httpOptionsOf } from '../core/runtime/serviceServer.ts';
import { startWitnessing, witnessEffect } from '../core/runtime/witness.ts';
import { CHECKPOINT_KIND } from '../core/audit/checkpoint.ts';
import type { InterfaceConfig } from './config.ts';
import { emrDeliveryEffect } from './delivery/handler.ts';
import { createEmrClient } from './delivery/emrClient.ts';
import { createMllpClient } from './delivery/mllpClient.ts';
import { routeByContentType } from './delivery/router.ts';
import { trackedEmrClient } from './delivery/trackedEmrClient.ts';
import { mllpDestinationOf } from './mllp/config.ts';
import { partnerEntrySchema, type PartnerEntry } from './intake/partners.ts';
import { startMllpIntake, type MllpIntakeServer } from './intake/mllpServer.ts';
import { buildInterfaceServer } from './server.ts';

/** The queues the interface service resolves at start: it sends on the first, consumes the second. */
export const INTERFACE_QUEUES = ['interface-to-app', 'app-to-interface'] as const;

/** A running interface service. */
export interface InterfaceService {
  /** The HTTP server (listening once `start` resolved). */
  server: FastifyInstance;
  /** The `app-to-interface` consumer (EMR delivery). */
  consumer: Consumer;
  /** The partner MLLP listener, when MLLP_INTAKE_PORT is set. */
  mllp: MllpIntakeServer | undefined;
  /** Keys, audit, SQS, metrics, emergency switch. */
  runtime: Runtime<'interface-to-app' | 'app-to-interface'>;
  /** Health gauges and built-in alert notifications. */
  alerts: AlertMonitor;
  /** Re-reads the partners and admin token files (SIGHUP): both or neither; audited. */
  reload(): void;
  /** Graceful stop (idempotent): not ready, stop accepting HTTP, drain the consumer within the deadline, close the runtime. */
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
  const service = await startServiceLifecycle({
    runtime: () =>
      startRuntime({
        service: 'interface',
        config,
        queues: INTERFACE_QUEUES,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.crypto ? { crypto: options.crypto } : {}),
      }),
    listen: (options.listen ?? true) ? { port: config.PORT, host: config.HOST } : false,
    httpDeadlineMs: config.SHUTDOWN_DEADLINE_MS,
    wire: async (rt, running) => {
      const partners = createTokenStore<PartnerEntry>({ file: config.PARTNERS_FILE, entrySchema: partnerEntrySchema }) as TokenStore<PartnerEntry>;
      const admins = config.ADMIN_TOKENS_FILE ? createTokenStore({ file: config.ADMIN_TOKENS_FILE }) : undefined;

      // Idempotency-Key claims (HTTP) and MLLP control ids, shared by every instance.
      const idempotency = createIdempotency({ table: rt.state, ttlSeconds: rt.stateTtlSeconds });
      const outbound = createOutboundPath(rt, { queue: 'interface-to-app', to: 'app' });
      const large = await openLargeObjects(config, { keys: rt.keys, logger: rt.logger, outbound, queue: 'interface-to-app' });
      const http = createEmrClient({ url: config.EMR_URL, timeoutMs: config.EMR_TIMEOUT_MS, ...(config.EMR_AUTH_TOKEN ? { authToken: config.EMR_AUTH_TOKEN } : {}) });
      // HL7 v2 chart updates go over MLLP when an MLLP destination is configured; the rest over HTTP(S).
      const mllp = config.EMR_MLLP_URL ? createMllpClient(mllpDestinationOf({ ...config, EMR_MLLP_URL: config.EMR_MLLP_URL }, (f) => readFileSync(f))) : undefined;
      // Every attempt, HTTP or MLLP, tells the alerts whether EMR delivery is failing.
      const emrHealth = new FailingSince();
      const emr = trackedEmrClient(routeByContentType({ http, ...(mllp ? { mllp } : {}) }), emrHealth);
      // A delivery's lease outlasts its longest attempt: the connect/HTTP timeout, plus the ACK wait over MLLP.
      const leaseMs = config.EMR_TIMEOUT_MS + (mllp ? config.EMR_MLLP_ACK_TIMEOUT_MS : 0) + 5_000;
      const ledger = createDeliveryLedger({ table: rt.state, holder: rt.holder, leaseMs, ttlSeconds: rt.stateTtlSeconds });
      const consumer = createInboundConsumer(rt, config, {
        queue: 'app-to-interface',
        maxInFlight: config.EMR_CONCURRENCY,
        effects: { 'chart.update': emrDeliveryEffect({ emr, audit: rt.audit, logger: rt.logger, ledger }), [CHECKPOINT_KIND]: witnessEffect(rt) },
      });

      const checks = { running, queue: () => consumer.ready(), keys: () => rt.keys.own.current.isPrivate() };
      const server = await buildInterfaceServer({
        logger: rt.logger,
        partners,
        ...(admins ? { admins } : {}),
        outbound,
        idempotency,
        audit: rt.audit,
        emergency: rt.emergency,
        registry: rt.metrics.registry,
        checks,
        bodyLimit: config.INTAKE_MAX_BODY_BYTES || MAX_PAYLOAD_BYTES,
        ...httpOptionsOf(config),
        authFailures: rt.authFailures,
        large: large?.outbound,
      });
      startWitnessing(rt, outbound);
      const mllpIntake =
        config.MLLP_INTAKE_PORT === undefined ? undefined : await startMllpIntake(config, { outbound, idempotency, audit: rt.audit, emergency: rt.emergency, logger: rt.logger });
      // Starting and stopping are not outages: the alerts watch the queue and the keys, not `running`.
      const alerts = await startServiceAlerts(rt, config, { consumed: ['app-to-interface'], readiness: { queue: checks.queue, keys: checks.keys }, emr: emrHealth });
      return {
        server,
        consumers: [{ consumer, deadlineMs: config.SHUTDOWN_DEADLINE_MS }],
        listeners: mllpIntake ? [mllpIntake.listener] : [],
        // The alert monitor stops last: pending notifications get their chance to go out.
        connections: [...(mllp ? [mllp] : []), ...(large ? [large] : []), { close: () => alerts.stop() }],
        alerts,
        partners,
        admins,
        mllpIntake,
      };
    },
  });
  const { runtime: rt, parts } = service;

  return {
    server: parts.server,
    consumer: parts.consumers[0]!.consumer,
    mllp: parts.mllpIntake,
    runtime: rt,
    alerts: parts.alerts,
    reload() {
      const files = [
        { file: config.PARTNERS_FILE, prepare: parts.partners.prepare },
        ...(parts.admins && config.ADMIN_TOKENS_FILE ? [{ file: config.ADMIN_TOKENS_FILE, prepare: parts.admins.prepare }] : []),
      ];
      reloadAll(files, { audit: rt.audit, logger: rt.logger, service: 'interface' });
      parts.mllpIntake?.reload();
    },
    stop: service.stop,
  };
}
