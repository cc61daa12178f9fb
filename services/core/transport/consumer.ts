import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { nullAudit, type AuditEvent } from '../audit/types.ts';
import { silentLogger } from '../log/logger.ts';
import { ATTR_QUARANTINED_AT, ATTR_REASON, ATTR_SOURCE_QUEUE, envelopeIdOf, safeReason, stringAttribute, type SqsAttributes } from './attributes.ts';
import { backoffDelay, sleep } from './backoff.ts';
import type { Consumer, ConsumerOptions, HandlerResult, ReceivedMessage } from './consumerTypes.ts';
import { errorCode } from './errors.ts';
import { changeVisibility, changeVisibilityBatch, copyAttributes, deleteMessage, forwardMessage } from './messageOps.ts';

export type { Consumer, ConsumerHealth, ConsumerOptions, HandlerResult, MessageHandler, ReceivedMessage } from './consumerTypes.ts';

interface Entry {
  handle: string;
  message: ReceivedMessage;
  groupId: string | undefined;
  controller: AbortController;
  phase: 'handling' | 'settling';
  abandoned: boolean;
  abandon: () => void;
  abandonedP: Promise<void>;
  finished: Promise<void>;
}

type Settlement = HandlerResult | { status: 'duplicate' };

/** Creates a consumer for one queue (docs/architecture.md, "Transport"). */
export function createConsumer(options: ConsumerOptions): Consumer {
  const { client, queueUrl, handler } = options;
  const queue = options.queueName ?? queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
  const log = (options.logger ?? silentLogger).child({ queue });
  const metrics = options.metrics?.transport;
  const audit = options.audit ?? nullAudit;
  const actor = options.service ?? 'care-relay';
  const maxInFlight = Math.max(1, options.maxInFlight ?? 10);
  const batchSize = Math.min(10, Math.max(1, options.batchSize ?? 10));
  const visibility = options.visibilityTimeoutSeconds ?? 30;
  const heartbeatMs = (options.heartbeatIntervalSeconds ?? Math.max(1, visibility / 3)) * 1000;
  const retryBackoff = { base: options.retryBaseSeconds ?? 2, max: options.retryMaxSeconds ?? 300, random: options.random };
  const receiveBackoff = { base: options.receiveErrorBaseMs ?? 500, max: options.receiveErrorMaxMs ?? 15_000, random: options.random };

  const inFlight = new Map<string, Entry>();
  const byEnvelope = new Map<string, Promise<void>>();
  let state: 'idle' | 'running' | 'stopping' = 'idle';
  let paused = false;
  let pollAbort: AbortController | undefined;
  let loopDone: Promise<void> = Promise.resolve();
  let stopping: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  let heartbeatBusy = false;
  let heartbeatRun: Promise<void> = Promise.resolve();
  let receiveErrors = 0;
  let lastReceiveError: string | undefined;
  let lastReceiveAt: number | undefined;

  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const gauge = (): void => metrics?.inFlight.set({ queue }, inFlight.size);

  async function loop(): Promise<void> {
    while (state === 'running') {
      if (paused || inFlight.size >= maxInFlight) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const abort = (pollAbort = new AbortController());
      let messages: Message[];
      try {
        const res = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(batchSize, maxInFlight - inFlight.size),
            WaitTimeSeconds: options.waitTimeSeconds ?? 20,
            VisibilityTimeout: visibility,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId'],
          }),
          { abortSignal: abort.signal },
        );
        messages = res.Messages ?? [];
        if (receiveErrors > 0) log.info({ after: receiveErrors }, 'receive recovered');
        receiveErrors = 0;
        lastReceiveError = undefined;
        lastReceiveAt = Date.now();
      } catch (err) {
        if (abort.signal.aborted) continue;
        receiveErrors++;
        lastReceiveError = errorCode(err);
        metrics?.receiveErrors.inc({ queue });
        log.warn({ code: lastReceiveError, attempt: receiveErrors }, 'receive failed; backing off');
        await sleep(backoffDelay(receiveErrors, receiveBackoff), abort.signal);
        continue;
      } finally {
        if (pollAbort === abort) pollAbort = undefined;
      }
      for (const m of messages) accept(m);
    }
  }

  function accept(m: Message): void {
    if (!m.ReceiptHandle || m.Body === undefined) return;
    const sent = Number(m.Attributes?.SentTimestamp);
    const attributes = m.MessageAttributes ?? {};
    const message: ReceivedMessage = {
      messageId: m.MessageId ?? '',
      body: m.Body,
      attributes,
      envelopeId: envelopeIdOf(attributes),
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1) || 1,
      sentAt: Number.isFinite(sent) && sent > 0 ? new Date(sent) : undefined,
      queue,
    };
    let abandon!: () => void;
    const abandonedP = new Promise<void>((resolve) => (abandon = resolve));
    const entry: Entry = {
      handle: m.ReceiptHandle,
      message,
      groupId: m.Attributes?.MessageGroupId,
      controller: new AbortController(),
      phase: 'handling',
      abandoned: false,
      abandon,
      abandonedP,
      finished: Promise.resolve(),
    };
    inFlight.set(entry.handle, entry);
    metrics?.received.inc({ queue });
    gauge();
    entry.finished = process(entry)
      .catch((err: unknown) => log.error({ messageId: message.messageId, code: errorCode(err) }, 'settling failed'))
      .finally(() => {
        inFlight.delete(entry.handle);
        gauge();
        notify();
      });
  }

  async function process(entry: Entry): Promise<void> {
    const id = entry.message.envelopeId;
    const dedupe = options.dedupe;
    let claimed: (() => void) | undefined;
    if (id !== undefined && dedupe) {
      // The same envelope id held twice by this consumer: the second waits for the first.
      for (let prior = byEnvelope.get(id); prior; prior = byEnvelope.get(id)) {
        await Promise.race([prior, entry.abandonedP]);
        if (entry.abandoned) return;
      }
      if (dedupe.has(id)) return settle(entry, { status: 'duplicate' });
      const mine = new Promise<void>((resolve) => (claimed = resolve));
      byEnvelope.set(id, mine);
    }
    try {
      const started = performance.now();
      let result: HandlerResult;
      let outcome: string;
      try {
        result = await Promise.race([handler(entry.message, entry.controller.signal), entry.abandonedP.then(() => ({ status: 'release' }) as const)]);
        if (!isHandlerResult(result)) result = { status: 'retry', reason: 'CR_TRANSPORT_INVALID_HANDLER_RESULT' };
        outcome = result.status;
      } catch (err) {
        result = { status: 'retry', reason: errorCode(err) };
        outcome = 'error';
        log.warn({ messageId: entry.message.messageId, envelopeId: id, code: result.reason }, 'handler threw; will retry');
      }
      if (entry.abandoned) return;
      metrics?.handlerDuration.observe({ queue, outcome }, (performance.now() - started) / 1000);
      entry.phase = 'settling';
      await settle(entry, result);
    } finally {
      if (id !== undefined && claimed) {
        byEnvelope.delete(id);
        claimed();
      }
    }
  }

  async function settle(entry: Entry, result: Settlement): Promise<void> {
    const ids = { messageId: entry.message.messageId, envelopeId: entry.message.envelopeId };
    switch (result.status) {
      case 'done': {
        if (entry.message.envelopeId !== undefined) options.dedupe?.add(entry.message.envelopeId);
        metrics?.done.inc({ queue });
        // Whoever waits on the effect (an inbox ack) learns whether the message is really gone.
        const deleted = await remove(entry);
        result.onDeleted?.(deleted);
        return;
      }
      case 'duplicate':
        metrics?.duplicates.inc({ queue });
        log.info(ids, 'duplicate envelope id; acknowledged without processing');
        await record(entry, 'message.duplicate', {});
        await remove(entry);
        return;
      case 'release':
        metrics?.released.inc({ queue });
        return visibilityTo(entry, 0);
      case 'retry': {
        const after = result.afterSeconds ?? Math.round(backoffDelay(entry.message.receiveCount, retryBackoff));
        metrics?.retried.inc({ queue });
        log.info({ ...ids, reason: safeReason(result.reason), afterSeconds: after }, 'retry later');
        return visibilityTo(entry, Math.min(43_200, Math.max(0, Math.round(after))));
      }
      case 'quarantine':
      case 'dead-letter': {
        const reason = safeReason(result.reason);
        const toQuarantine = result.status === 'quarantine';
        const extra: SqsAttributes = { [ATTR_REASON]: stringAttribute(reason), [ATTR_SOURCE_QUEUE]: stringAttribute(queue) };
        if (toQuarantine) extra[ATTR_QUARANTINED_AT] = stringAttribute(new Date().toISOString());
        const sent = await forwardMessage(client, {
          queueUrl: toQuarantine ? options.quarantineUrl : options.dlqUrl,
          body: entry.message.body,
          attributes: { ...copyAttributes(entry.message.attributes), ...extra },
          ...(options.fifo
            ? { fifo: { groupId: entry.groupId ?? 'care-relay', deduplicationId: entry.message.envelopeId ?? entry.message.messageId } }
            : {}),
        });
        if (!sent.ok) {
          // Never delete without a copy: fall back to a retry, so redrive still catches it.
          log.error({ ...ids, reason, code: sent.code }, `could not copy the message to the ${toQuarantine ? 'quarantine queue' : 'DLQ'}; retrying later`);
          return settle(entry, { status: 'retry', reason });
        }
        if (toQuarantine) metrics?.quarantined.inc({ queue, reason });
        else metrics?.deadLettered.inc({ queue, reason });
        log.warn({ ...ids, reason }, toQuarantine ? 'quarantined' : 'dead-lettered');
        await record(entry, toQuarantine ? 'message.quarantined' : 'message.dead-lettered', { reason });
        await remove(entry);
        return;
      }
    }
  }

  async function remove(entry: Entry): Promise<boolean> {
    const res = await deleteMessage(client, queueUrl, entry.handle);
    if (res.ok) return true;
    metrics?.deleteFailures.inc({ queue });
    log.error({ messageId: entry.message.messageId, envelopeId: entry.message.envelopeId, code: res.code }, 'delete failed; the message will be redelivered');
    return false;
  }

  async function visibilityTo(entry: Entry, seconds: number): Promise<void> {
    const res = await changeVisibility(client, queueUrl, entry.handle, seconds);
    if (res.ok) return;
    metrics?.visibilityFailures.inc({ queue });
    log.warn({ messageId: entry.message.messageId, code: res.code, seconds }, 'visibility change failed; the message returns after its timeout');
  }

  async function record(entry: Entry, action: AuditEvent['action'], details: Record<string, string>): Promise<void> {
    try {
      await audit.record({
        action,
        actor,
        resourceType: 'sqs-message',
        resourceId: entry.message.envelopeId ?? entry.message.messageId,
        outcome: 'success',
        details: { queue, ...details },
      });
    } catch (err) {
      log.error({ messageId: entry.message.messageId, code: errorCode(err), action }, 'audit write failed');
    }
  }

  async function heartbeat(): Promise<void> {
    if (heartbeatBusy || inFlight.size === 0) return;
    heartbeatBusy = true;
    try {
      const handles = [...inFlight.values()].filter((e) => !e.abandoned).map((e) => e.handle);
      const failed = await changeVisibilityBatch(client, queueUrl, handles, visibility);
      for (const [handle, code] of failed) {
        const entry = inFlight.get(handle);
        if (!entry) continue; // settled meanwhile: not a failure
        metrics?.heartbeatFailures.inc({ queue });
        log.warn({ messageId: entry.message.messageId, envelopeId: entry.message.envelopeId, code }, 'heartbeat failed');
      }
    } finally {
      heartbeatBusy = false;
    }
  }

  async function stop(deadlineMs: number): Promise<void> {
    state = 'stopping';
    pollAbort?.abort();
    notify();
    await loopDone;
    const deadline = new AbortController();
    await Promise.race([Promise.all([...inFlight.values()].map((e) => e.finished)), sleep(deadlineMs, deadline.signal)]);
    deadline.abort();
    // No extension may land after the release below, or it would hide the released
    // messages for another visibility timeout instead of handing them over at once.
    clearInterval(heartbeatTimer);
    heartbeatTimer = undefined;
    await heartbeatRun;
    const rest = [...inFlight.values()].filter((e) => e.phase === 'handling');
    for (const e of rest) {
      e.abandoned = true;
      e.controller.abort();
      e.abandon();
    }
    if (rest.length > 0) {
      const failed = await changeVisibilityBatch(client, queueUrl, rest.map((e) => e.handle), 0);
      metrics?.released.inc({ queue }, rest.length - failed.size);
      if (failed.size > 0) metrics?.visibilityFailures.inc({ queue }, failed.size);
      log.info({ released: rest.length - failed.size, failed: failed.size }, 'released held messages at shutdown');
    }
    await Promise.all([...inFlight.values()].map((e) => e.finished));
    state = 'idle';
    log.info('consumer stopped');
  }

  return {
    start() {
      if (state !== 'idle') return;
      state = 'running';
      heartbeatTimer = setInterval(() => {
        heartbeatRun = heartbeat();
      }, heartbeatMs);
      loopDone = loop().catch((err: unknown) => log.error({ code: errorCode(err) }, 'receive loop failed'));
      log.info({ maxInFlight, visibility }, 'consumer started');
    },
    pause() {
      if (paused) return;
      paused = true;
      pollAbort?.abort();
      log.info('consumer paused');
    },
    resume() {
      if (!paused) return;
      paused = false;
      notify();
      log.info('consumer resumed');
    },
    stop(opts = {}) {
      if (state === 'idle') return stopping ?? Promise.resolve();
      if (state === 'running') stopping = stop(opts.deadlineMs ?? 30_000);
      return stopping!;
    },
    get inFlightCount() {
      return inFlight.size;
    },
    get isRunning() {
      return state === 'running';
    },
    ready() {
      return state === 'running' && receiveErrors === 0;
    },
    health() {
      return { running: state === 'running', paused, inFlight: inFlight.size, consecutiveReceiveErrors: receiveErrors, lastReceiveError, lastReceiveAt };
    },
  };
}

function isHandlerResult(value: unknown): value is HandlerResult {
  const status = (value as { status?: unknown } | null)?.status;
  return status === 'done' || status === 'retry' || status === 'quarantine' || status === 'dead-letter' || status === 'release';
}
