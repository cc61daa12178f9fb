import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createTokenStore, type TokenStore } from '../core/http/auth.ts';
import { createIdempotency } from '../core/relay/idempotency.ts';
import { createDeliveryLedger } from '../core/state/deliveryLedger.ts';
import { MAX_PAYLOAD_BYTES } from '../core/relay/outbound.ts';
import type { RelayCrypto } from '../core/relay/crypto.ts';
import type { StateTable } from '../core/state/table.ts';
import type { ServiceKeys } from '../core/keys/load.ts';
import { FailingSince } from '../core/alerts/failingSince.ts';
import type { AlertMonitor } from '../core/alerts/monitor.ts';
import { startServiceAlerts } from '../core/runtime/alerts.ts';
import { startRuntime, type Runtime } from '../core/runtime/runtime.ts';
import type { Consumer } from '../core/transport/consumer.ts';
import { startServiceLifecycle } from '../core/runtime/lifecycle.ts';
import { createInboundConsumer } from '../core/runtime/inboundConsumer.ts';
import { readMaxReceiveCount } from '../core/transport/redrive.ts';
import { createOutboundPath } from '../core/runtime/outboundPath.ts';
import { openLargeObjects, receiveLargeObjects } from '../core/runtime/largeObjects.ts';
import { reloadAll } from '../core/runtime/reload.ts';
import { httpOptionsOf } from '../core/runtime/serviceServer.ts';
import { startWitnessing, witnessEffect } from '../core/runtime/witness.ts';
import { CHECKPOINT_KIND } from '../core/audit/checkpoint.ts';
import { registerConsole } from '../core/console/wire.ts';
import type { InterfaceConfig } from './config.ts';
import { gateKind } from './delivery/gate.ts';
import { emrDeliveryEffect } from './delivery/handler.ts';
import { createEmrClient } from './delivery/emrClient.ts';
import { createMllpClient } from './delivery/mllpClient.ts';
import { routeByContentType } from './delivery/router.ts';
import { trackedEmrClient } from './delivery/trackedEmrClient.ts';
import { mllpDestinationOf } from './mllp/config.ts';
import { partnerEntrySchema, type PartnerEntry } from './intake/partners.ts';
import { startMllpIntake, type MllpIntakeServer } from './intake/mllpServer.ts';
import { buildInterfaceServer } from './server.ts';
import { createReceiptSender, receiptEffect } from '../core/receipts/receipts.ts';
import { RECEIPT_KIND } from '../core/receipts/receipt.ts';
import { createCallbackTargets } from './callbacks/targets.ts';
import { CALLBACK_QUEUE, createPartnerCallbacks } from './callbacks/wiring.ts';
import { SubmissionStatusEvents } from './status/events.ts';
import { createSubmissionStatus, type SubmissionStatusTracker } from './status/submissionStatus.ts';
import { trackedOutbound } from './status/trackedOutbound.ts';

/** Messages of `app-to-interface` held beyond the EMR deliveries: receipts and checkpoints, applied in a few store calls each. */
const RECEIPTS_IN_FLIGHT = 32;

/** The queues the interface service resolves at start: it sends on the first, consumes the second. */
export const INTERFACE_QUEUES = ['interface-to-app', 'app-to-interface', 'interface-partner-callbacks'] as const;

type InterfaceQueue = (typeof INTERFACE_QUEUES)[number];

/** A running interface service. */
export interface InterfaceService {
  /** The HTTP server (listening once `start` resolved). */
  server: FastifyInstance;
  /** The `app-to-interface` consumer (EMR delivery). */
  consumer: Consumer;
  /** The partner MLLP listener, when MLLP_INTAKE_PORT is set. */
  mllp: MllpIntakeServer | undefined;
  /** Keys, audit, SQS, metrics, emergency switch. */
  runtime: Runtime<InterfaceQueue>;
  /** Submission status changes: the status store publishes, the partner callbacks listen. */
  statusEvents: SubmissionStatusEvents;
  /** The partner callbacks consumer, when the partners file had a callback at start. */
  callbacks: Consumer | undefined;
  /** Health gauges and built-in alert notifications. */
  alerts: AlertMonitor;
  /** Submission status records (state table). */
  submissionStatus: SubmissionStatusTracker;
  /** Re-reads the partners file (tokens and callbacks with their secret files) and the admin token file (SIGHUP): all or none; audited. */
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
  /** Replaces the DynamoDB state table (the bench measures the relay without the store). */
  stateTable?: (name: string) => StateTable;
  /** Listen on PORT/HOST; false for `inject()`-only tests. */
  listen?: boolean;
  /** The status channel to use (tests publish on it); a new one otherwise. */
  statusEvents?: SubmissionStatusEvents;
}

function both(first: () => void, second: () => void): () => void {
  return () => {
    first();
    second();
  };
}

/** Wires and starts the interface service from a validated configuration. */
export async function startInterfaceService(config: InterfaceConfig, options: StartInterfaceOptions = {}): Promise<InterfaceService> {
  const statusEvents = options.statusEvents ?? new SubmissionStatusEvents();
  // Partner callbacks (URLs and secret files) are checked before anything starts; the callbacks
  // queue is needed, and resolved, only when a partner has one.
  const callbackTargets = createCallbackTargets({ partnersFile: config.PARTNERS_FILE, allowInsecure: config.PARTNER_CALLBACK_ALLOW_INSECURE, allowPrivate: config.PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS });
  const queues: readonly InterfaceQueue[] = callbackTargets.size > 0 ? INTERFACE_QUEUES : INTERFACE_QUEUES.filter((q) => q !== CALLBACK_QUEUE);
  const service = await startServiceLifecycle({
    runtime: async () =>
      (await startRuntime({
        service: 'interface',
        config,
        queues,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.crypto ? { crypto: options.crypto } : {}),
        ...(options.stateTable ? { stateTable: options.stateTable } : {}),
      })) as Runtime<InterfaceQueue>,
    listen: (options.listen ?? true) ? { port: config.PORT, host: config.HOST } : false,
    httpDeadlineMs: config.SHUTDOWN_DEADLINE_MS,
    wire: async (rt, running) => {
      const partners = createTokenStore<PartnerEntry>({ file: config.PARTNERS_FILE, entrySchema: partnerEntrySchema }) as TokenStore<PartnerEntry>;
      const admins = config.ADMIN_TOKENS_FILE ? createTokenStore({ file: config.ADMIN_TOKENS_FILE }) : undefined;

      const relay = createOutboundPath(rt, { queue: 'interface-to-app', to: 'app' });
      // Submission status: HTTP and MLLP intake send through the tracked path (accepted, queued); app receipts move it on.
      // Every change is published on statusEvents, where the partner callbacks listen.
      const submissionStatus = createSubmissionStatus({ table: rt.state, ttlSeconds: rt.stateTtlSeconds, events: statusEvents, logger: rt.logger });
      // Idempotency-Key claims (HTTP) and MLLP control ids, shared by every instance; a claim is settled by its submission's status.
      const idempotency = createIdempotency({ table: rt.state, ttlSeconds: rt.stateTtlSeconds, sent: (id) => submissionStatus.sent(id) });
      const outbound = trackedOutbound(relay, submissionStatus);
      const large = await openLargeObjects(config, { keys: rt.keys, logger: rt.logger, outbound, queue: 'interface-to-app' });
      const receipts = createReceiptSender({ outbound: relay, service: 'interface', logger: rt.logger, maxPerEnvelope: config.RECEIPTS_PER_ENVELOPE, lingerMs: config.RECEIPT_LINGER_MS });
      const callbacks = queues.includes(CALLBACK_QUEUE) ? createPartnerCallbacks(config, rt, callbackTargets, statusEvents) : undefined;
      // A chart update that came through S3 is checked whole on receipt, then streamed to the EMR from the checked version.
      const http = createEmrClient({ url: config.EMR_URL, timeoutMs: config.EMR_TIMEOUT_MS, ...(config.EMR_AUTH_TOKEN ? { authToken: config.EMR_AUTH_TOKEN } : {}), openLarge: large?.read });
      // HL7 v2 chart updates go over MLLP when an MLLP destination is configured; the rest over HTTP(S).
      const mllp = config.EMR_MLLP_URL ? createMllpClient(mllpDestinationOf({ ...config, EMR_MLLP_URL: config.EMR_MLLP_URL }, (f) => readFileSync(f))) : undefined;
      // Every attempt, HTTP or MLLP, tells the alerts whether EMR delivery is failing.
      const emrHealth = new FailingSince();
      const emr = trackedEmrClient(routeByContentType({ http, ...(mllp ? { mllp } : {}) }), emrHealth);
      // A delivery's lease outlasts its longest wait: the connect/HTTP timeout, plus the ACK wait over MLLP;
      // it is renewed every third of it while the attempt runs (a streamed update may take far longer).
      const leaseMs = config.EMR_TIMEOUT_MS + (mllp ? config.EMR_MLLP_ACK_TIMEOUT_MS : 0) + 5_000;
      const ledger = createDeliveryLedger({ table: rt.state, holder: rt.holder, leaseMs, ttlSeconds: rt.stateTtlSeconds, logger: rt.logger });
      // A chart update that keeps failing goes to the DLQ by redrive after this many receives: on the last one the app
      // is told it failed (dead-lettered), whatever EMR_MLLP_MAX_ATTEMPTS says.
      const maxReceiveCount = await readMaxReceiveCount(rt.sqs, rt.queues['app-to-interface'], rt.logger);
      const consumer = createInboundConsumer(rt, config, {
        queue: 'app-to-interface',
        ...(maxReceiveCount !== undefined ? { maxReceiveCount } : {}),
        // The app's receipts (two per submission) share this queue: they must not wait for EMR places.
        maxInFlight: config.EMR_CONCURRENCY + RECEIPTS_IN_FLIGHT,
        effects: gateKind('chart.update', config.EMR_CONCURRENCY, receiveLargeObjects(large, {
          'chart.update': emrDeliveryEffect({ emr, audit: rt.audit, logger: rt.logger, ledger, receipts }),
          [CHECKPOINT_KIND]: witnessEffect(rt),
          [RECEIPT_KIND]: receiptEffect({ table: rt.state, ttlSeconds: rt.stateTtlSeconds, apply: submissionStatus.applyReceipt, applyInTurn: submissionStatus.applyInTurn, audit: rt.audit, service: 'interface', logger: rt.logger }),
        }, async (envelope) => envelope.kind === 'chart.update' && (await ledger.isDelivered(envelope.id)))),
        // A chart update refused here after its signature verified: the app learns it failed (never for a receipt).
        onRejected: (r) => {
          if (r.kind === 'chart.update') void receipts.send({ ref: r.id, status: 'failed', reasonCode: r.reason, disposition: r.disposition }, { linger: true });
        },
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
        submissionStatus,
      });
      // The operator console signs admins in with the admin tokens: without them there is no console.
      if (admins) await registerConsole(server, rt, config, { tokens: admins, checks, consumed: ['app-to-interface'] });
      startWitnessing(rt, relay);
      const mllpIntake =
        config.MLLP_INTAKE_PORT === undefined ? undefined : await startMllpIntake(config, { outbound, idempotency, audit: rt.audit, emergency: rt.emergency, logger: rt.logger, authFailures: rt.authFailures });
      // Starting and stopping are not outages: the alerts watch the queue and the keys, not `running`.
      const alerts = await startServiceAlerts(rt, config, { consumed: callbacks ? ['app-to-interface', CALLBACK_QUEUE] : ['app-to-interface'], readiness: { queue: checks.queue, keys: checks.keys }, emr: emrHealth });
      return {
        server,
        consumers: [{ consumer, deadlineMs: config.SHUTDOWN_DEADLINE_MS }, ...(callbacks ? [{ consumer: callbacks.consumer, deadlineMs: config.SHUTDOWN_DEADLINE_MS }] : [])],
        listeners: mllpIntake ? [mllpIntake.listener] : [],
        // The alert monitor stops last: pending notifications get their chance to go out.
        // Status changes of the last requests are enqueued before the runtime closes.
        connections: [...(mllp ? [mllp] : []), ...(large ? [large] : []), ...(callbacks ? [{ close: () => callbacks.close() }] : []), { close: () => receipts.flush() }, { close: () => alerts.stop() }],
        alerts,
        partners,
        admins,
        mllpIntake,
        submissionStatus,
        callbacks,
      };
    },
  });
  const { runtime: rt, parts } = service;

  return {
    server: parts.server,
    consumer: parts.consumers[0]!.consumer,
    mllp: parts.mllpIntake,
    runtime: rt,
    statusEvents,
    callbacks: parts.callbacks?.consumer,
    alerts: parts.alerts,
    submissionStatus: parts.submissionStatus,
    reload() {
      const files = [
        // One file, two readings (tokens; callbacks with their secret files): both valid or neither applied.
        { file: config.PARTNERS_FILE, prepare: () => both(parts.partners.prepare(), callbackTargets.prepare()) },
        ...(parts.admins && config.ADMIN_TOKENS_FILE ? [{ file: config.ADMIN_TOKENS_FILE, prepare: parts.admins.prepare }] : []),
      ];
      reloadAll(files, { audit: rt.audit, logger: rt.logger, service: 'interface' });
      parts.mllpIntake?.reload();
    },
    stop: service.stop,
  };
}
