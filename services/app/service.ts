import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createTokenStore } from '../core/http/auth.ts';
import type { ServiceKeys } from '../core/keys/load.ts';
import type { RelayCrypto } from '../core/relay/crypto.ts';
import type { StateTable } from '../core/state/table.ts';
import { createIdempotency } from '../core/relay/idempotency.ts';
import { MAX_PAYLOAD_BYTES } from '../core/relay/outbound.ts';
import type { AlertMonitor } from '../core/alerts/monitor.ts';
import { startServiceAlerts } from '../core/runtime/alerts.ts';
import { registerConsole } from '../core/console/wire.ts';
import { startRuntime, type Runtime } from '../core/runtime/runtime.ts';
import type { Consumer } from '../core/transport/consumer.ts';
import { startServiceLifecycle, type ManagedConsumer } from '../core/runtime/lifecycle.ts';
import { createInboundConsumer } from '../core/runtime/inboundConsumer.ts';
import { createOutboundPath } from '../core/runtime/outboundPath.ts';
import { openLargeObjects, receiveLargeObjects } from '../core/runtime/largeObjects.ts';
import type { EnvelopeEffects } from '../core/relay/inbound.ts';
import { reloadAll } from '../core/runtime/reload.ts';
import { httpOptionsOf } from '../core/runtime/serviceServer.ts';
import { startWitnessing, witnessEffect } from '../core/runtime/witness.ts';
import { CHECKPOINT_KIND } from '../core/audit/checkpoint.ts';
import type { AppConfig } from './config.ts';
import { createHolderLiveness } from '../core/state/liveness.ts';
import { createApplyLedger } from '../core/state/applyLedger.ts';
import { inboxEffect } from './inbox/effect.ts';
import { createMarkRetry } from './inbox/remark.ts';
import { Inbox } from './inbox/inbox.ts';
import { rejectionReceipt } from './inbox/rejections.ts';
import { buildAppServer } from './server.ts';
import { createSms } from './smsWiring.ts';
import { createReceiptSender, receiptEffect } from '../core/receipts/receipts.ts';
import { RECEIPT_KIND } from '../core/receipts/receipt.ts';
import { readMaxReceiveCount } from '../core/transport/redrive.ts';
import { createChartUpdateStatus, type ChartUpdateStatusTracker } from './status/chartUpdateStatus.ts';

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
  /** Health gauges and built-in alert notifications. */
  alerts: AlertMonitor;
  /** Chart update status records (state table). */
  chartUpdateStatus: ChartUpdateStatusTracker;
  /** Re-reads the API tokens file (SIGHUP); audited. */
  reload(): void;
  /** Graceful stop (idempotent): not ready, stop accepting HTTP, release held records, drain within the deadline, close. */
  stop(): Promise<void>;
}

/** Options for {@link startAppService}. */
export interface StartAppOptions {
  /** Logger (tests capture lines); built from LOG_LEVEL otherwise. */
  logger?: Logger;
  /** Replaces the in-thread crypto (worker pool). */
  crypto?: (keys: ServiceKeys) => RelayCrypto;
  /** Replaces the DynamoDB state table (the bench measures the relay without the store). */
  stateTable?: (name: string) => StateTable;
  /** Listen on PORT/HOST; false for `inject()`-only tests. */
  listen?: boolean;
}

/** Longest a held inbox record delays shutdown: it cannot finish without an ack, so it is released. */
const INBOX_RELEASE_DEADLINE_MS = 2_000;

/** Wires and starts the app service from a validated configuration. */
export async function startAppService(config: AppConfig, options: StartAppOptions = {}): Promise<AppService> {
  const queues: readonly AppQueues[] = config.SIGNALWIRE_PROJECT_ID ? APP_QUEUES : APP_QUEUES.filter((q) => q !== 'app-sms-redaction');
  const service = await startServiceLifecycle({
    runtime: async () =>
      (await startRuntime({
        service: 'app',
        config,
        queues,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.crypto ? { crypto: options.crypto } : {}),
        ...(options.stateTable ? { stateTable: options.stateTable } : {}),
      })) as Runtime<AppQueues>,
    listen: (options.listen ?? true) ? { port: config.PORT, host: config.HOST } : false,
    httpDeadlineMs: config.SHUTDOWN_DEADLINE_MS,
    wire: async (rt, running) => {
      const tokens = createTokenStore({ file: config.APP_TOKENS_FILE });
      const inbox = new Inbox(config.INBOX_CAPACITY);

      const relay = createOutboundPath(rt, { queue: 'app-to-interface', to: 'interface' });
      // Chart update status: accepted and queued here, delivered or failed by the interface's receipts.
      const chartUpdateStatus = createChartUpdateStatus({ table: rt.state, ttlSeconds: rt.stateTtlSeconds, logger: rt.logger });
      const outbound = chartUpdateStatus.track(relay);
      const large = await openLargeObjects(config, { keys: rt.keys, logger: rt.logger, outbound, queue: 'app-to-interface' });
      // A submission too large for one message is fetched from S3 and checked before it is held.
      // A copy of a submission already acknowledged, whose object was deleted, is a duplicate (the apply ledger says so).
      const receiving = (effects: EnvelopeEffects): EnvelopeEffects =>
        receiveLargeObjects(large, effects, async (envelope) => envelope.kind === 'care.submission' && (await applyLedger.isApplied(envelope.id)));
      const receipts = createReceiptSender({ outbound: relay, service: 'app', logger: rt.logger, maxPerEnvelope: config.RECEIPTS_PER_ENVELOPE, lingerMs: config.RECEIPT_LINGER_MS });
      // Inbox holds last while this process lives: one lease for the process, renewed each heartbeat.
      const liveness = createHolderLiveness({ table: rt.state, holder: rt.holder, leaseMs: config.VISIBILITY_TIMEOUT_SECONDS * 1000, renewMs: config.HEARTBEAT_INTERVAL_SECONDS * 1000, logger: rt.logger });
      await liveness.start();
      const applyLedger = createApplyLedger({ table: rt.state, holder: rt.holder, leaseMs: config.VISIBILITY_TIMEOUT_SECONDS * 1000, ttlSeconds: rt.stateTtlSeconds, liveness, batchApplied: true });
      // An ack whose mark failed is marked again later: a repeated ack at any instance then finds it.
      const remark = createMarkRetry({ mark: (id) => applyLedger.applied(id), logger: rt.logger });
      // A submission that keeps failing goes to the DLQ by redrive after this many receives.
      const maxReceiveCount = await readMaxReceiveCount(rt.sqs, rt.queues['interface-to-app'], rt.logger);
      const inboxConsumer = createInboundConsumer(rt, config, {
        queue: 'interface-to-app',
        ...(maxReceiveCount !== undefined ? { maxReceiveCount } : {}),
        // Backpressure: at most INBOX_CAPACITY records held; beyond that messages wait in SQS.
        maxInFlight: config.INBOX_CAPACITY,
        effects: receiving({
          'care.submission': inboxEffect(inbox, { ledger: applyLedger, logger: rt.logger, receipts, remark }),
          [CHECKPOINT_KIND]: witnessEffect(rt),
          [RECEIPT_KIND]: receiptEffect({ table: rt.state, ttlSeconds: rt.stateTtlSeconds, apply: chartUpdateStatus.applyReceipt, audit: rt.audit, service: 'app', logger: rt.logger }),
        }),
        // A submission refused here after its signature verified, or failing on its last receive before
        // the redrive: the interface learns it was rejected (quarantined or dead-lettered; never for a receipt).
        onRejected: (r) => {
          const receipt = rejectionReceipt(r);
          if (receipt) void receipts.send(receipt, { linger: true });
        },
      });

      const sms = config.SIGNALWIRE_PROJECT_ID ? createSms(config, rt) : undefined;

      const checks = { running, queue: () => inboxConsumer.ready(), keys: () => rt.keys.own.current.isPrivate() };
      const server = await buildAppServer({
        logger: rt.logger,
        tokens,
        inbox,
        acknowledgedBefore: (id) => applyLedger.isApplied(id),
        outbound,
        idempotency: createIdempotency({ table: rt.state, ttlSeconds: rt.stateTtlSeconds, sent: (id) => chartUpdateStatus.sent(id) }),
        audit: rt.audit,
        emergency: rt.emergency,
        registry: rt.metrics.registry,
        checks,
        bodyLimit: config.CHART_UPDATE_MAX_BODY_BYTES || MAX_PAYLOAD_BYTES,
        hash: (value) => rt.hash(value),
        ...(sms ? { smsRoutes: sms.routes, smsWebhook: sms.webhook } : {}),
        ...httpOptionsOf(config),
        authFailures: rt.authFailures,
        ...(large ? { large: large.outbound, readObject: large.read } : {}),
        chartUpdateStatus,
      });
      await registerConsole(server, rt, config, {
        tokens,
        checks,
        consumed: sms ? ['interface-to-app', 'app-sms-redaction'] : ['interface-to-app'],
        inbox: () => ({ size: inbox.size, capacity: inbox.capacity }),
      });
      startWitnessing(rt, relay);

      const consumers: ManagedConsumer[] = [
        { consumer: inboxConsumer, deadlineMs: Math.min(config.SHUTDOWN_DEADLINE_MS, INBOX_RELEASE_DEADLINE_MS) },
        ...(sms ? [{ consumer: sms.consumer, deadlineMs: config.SHUTDOWN_DEADLINE_MS }] : []),
      ];
      const alerts = await startServiceAlerts(rt, config, {
        consumed: sms ? ['interface-to-app', 'app-sms-redaction'] : ['interface-to-app'],
        // Starting and stopping are not outages: the alerts watch the queue and the keys, not `running`.
        readiness: { queue: checks.queue, keys: checks.keys },
        inbox: () => ({ size: inbox.size, capacity: inbox.capacity }),
      });
      // The alert monitor stops last: pending notifications get their chance to go out.
      return {
        server,
        consumers,
        // An acknowledged record's message is deleted once its `acknowledged` receipt is out: a stop sends what lingers at once.
        stopping: [() => void receipts.flush()],
        connections: [...(large ? [large] : []), { close: () => receipts.flush() }, { close: () => remark.stop() }, { close: () => liveness.stop() }, { close: () => alerts.stop() }],
        inbox,
        tokens,
        alerts,
        chartUpdateStatus,
      };
    },
  });
  const { runtime: rt, parts } = service;

  return {
    server: parts.server,
    inbox: parts.inbox,
    consumers: parts.consumers.map((c) => c.consumer),
    runtime: rt,
    alerts: parts.alerts,
    chartUpdateStatus: parts.chartUpdateStatus,
    reload() {
      reloadAll([{ file: config.APP_TOKENS_FILE, prepare: parts.tokens.prepare }], { audit: rt.audit, logger: rt.logger, service: 'app' });
    },
    stop: service.stop,
  };
}
