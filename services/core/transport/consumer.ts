import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { nullAudit, type AuditEvent } from '../audit/types.ts';
import { silentLogger } from '../log/logger.ts';
import { ATTR_DEAD_LETTERED_AT, ATTR_NOT_BEFORE, ATTR_QUARANTINED_AT, ATTR_REASON, ATTR_SOURCE_QUEUE, attributeString, safeReason, stringAttribute, type SqsAttributes } from './attributes.ts';
import { backoffDelay, sleep } from './backoff.ts';
import type { Consumer, ConsumerOptions, HandlerResult } from './consumerTypes.ts';
import { errorCode, TRANSPORT_ERRORS } from './errors.ts';
import { HeldMessage } from './heldMessage.ts';
import { changeVisibilityBatch, copyAttributes, forwardMessage } from './messageOps.ts';
import { FIFO_ORDERING, fifoGroupOf, type ResolvedQueue } from './queues.ts';
import { createSettleOps } from './settleOps.ts';
import { checkInteger, checkNumber, checkQueue } from './validation.ts';

export type { Consumer, ConsumerHealth, ConsumerOptions, HandlerResult, MessageHandler, ReceivedMessage } from './consumerTypes.ts';

/** What the consumer keeps per held message: only what settling, the heartbeat and stop need. */
interface Entry {
  /** Receipt handle: delete, visibility changes, heartbeat. */
  readonly handle: string;
  /** What the handler sees; its ciphertext may be released (HeldMessage.releaseBody). */
  readonly message: HeldMessage;
  /** Aborts the handler at a stop deadline. */
  readonly controller: AbortController;
  /** `handling` until the handler answers; `abandoned` once given up at stop (released, not settled). */
  state: 'handling' | 'settling' | 'abandoned';
  /** Ends the current wait (dedupe or handler) when the entry is abandoned. */
  abandon: (() => void) | undefined;
  /** Resolves once the entry is settled or abandoned. */
  finished: Promise<void>;
}

/** Creates a consumer for one queue (docs/architecture.md, "Transport"). */
export function createConsumer(options: ConsumerOptions): Consumer {
  validateConsumerOptions(options);
  const { client, handler } = options;
  const target = options.queue;
  const queueUrl = target.url;
  const queue = target.logical;
  const log = (options.logger ?? silentLogger).child({ queue });
  const metrics = options.metrics?.transport;
  const audit = options.audit ?? nullAudit;
  const actor = options.service ?? 'care-relay';
  const maxInFlight = options.maxInFlight ?? 10;
  // An ordered FIFO queue is received one message at a time: SQS returns up to 10 messages of
  // one group per receive, which would be handled side by side (out of order, and the ones
  // after a retried message would be delivered before it). One at a time, a retried message
  // keeps its group locked until it is received again, so the ones after it wait.
  const batchSize = target.fifo && FIFO_ORDERING[queue] === 'ordered' ? 1 : (options.batchSize ?? 10);
  const visibility = options.visibilityTimeoutSeconds ?? 30;
  const heartbeatMs = (options.heartbeatIntervalSeconds ?? Math.max(1, visibility / 3)) * 1000;
  const retryBackoff = { base: options.retryBaseSeconds ?? 2, max: options.retryMaxSeconds ?? 300, random: options.random };
  const receiveBackoff = { base: options.receiveErrorBaseMs ?? 500, max: options.receiveErrorMaxMs ?? 15_000, random: options.random };

  const ops = createSettleOps({ client, queue: target, log, metrics, lingerMs: options.lingerMs ?? 0 });
  const inFlight = new Map<string, Entry>();
  /** Envelope ids being handled, for duplicate recognition (with `dedupe`). */
  const byEnvelope = new Map<string, Entry>();
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
      try {
        await receiveOnce();
      } catch (err) {
        // Something outside the ReceiveMessage call threw (a bug, or a reply no SQS would send): the loop
        // goes on after a backoff instead of ending while the consumer still says it runs.
        await backOff(err, 'error', 'receive loop step failed; backing off');
      }
    }
  }

  /** Counts a failed receive step (not ready until a receive succeeds), logs it, and waits (ended early by stop or pause). */
  async function backOff(err: unknown, level: 'warn' | 'error', msg: string): Promise<void> {
    receiveErrors++;
    lastReceiveError = errorCode(err);
    metrics?.receiveErrors.inc({ queue });
    log[level]({ code: lastReceiveError, attempt: receiveErrors }, msg);
    const abort = (pollAbort = new AbortController());
    try {
      await sleep(backoffDelay(receiveErrors, receiveBackoff), abort.signal);
    } finally {
      if (pollAbort === abort) pollAbort = undefined;
    }
  }

  /**
   * One long poll; accepts what it brings. Its own frame, so that the SDK's response (every
   * body of the batch) is not kept alive by the loop while the next long poll waits.
   */
  async function receiveOnce(): Promise<void> {
    const abort = (pollAbort = new AbortController());
    let messages: Message[] = [];
    let failed: { err: unknown } | undefined;
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
      if (receiveErrors > 0) log.info({ after: receiveErrors }, 'receive recovered');
      receiveErrors = 0;
      lastReceiveError = undefined;
      lastReceiveAt = Date.now();
      messages = res.Messages ?? [];
    } catch (err) {
      if (abort.signal.aborted) return;
      failed = { err };
    } finally {
      if (pollAbort === abort) pollAbort = undefined;
    }
    if (failed) return backOff(failed.err, 'warn', 'receive failed; backing off');
    // One message that cannot be taken does not keep the others of its batch from being handled;
    // it comes back after its visibility timeout (and, received too often, goes to the DLQ).
    let fault: { err: unknown } | undefined;
    for (const m of messages) {
      try {
        accept(m);
      } catch (err) {
        fault ??= { err };
      }
    }
    if (fault) throw fault.err;
  }

  function accept(m: Message): void {
    if (!m.ReceiptHandle || m.Body === undefined) return;
    const entry: Entry = {
      handle: m.ReceiptHandle,
      message: new HeldMessage(m as Message & { Body: string }, queue),
      controller: new AbortController(),
      state: 'handling',
      abandon: undefined,
      finished: Promise.resolve(),
    };
    // Held and handled before anything else can throw: an entry in `inFlight` is always being handled.
    inFlight.set(entry.handle, entry);
    entry.finished = process(entry);
    metrics?.received.inc({ queue });
    const sentAt = entry.message.sentAt;
    if (sentAt) metrics?.lastReceivedSent.set({ queue }, sentAt.getTime() / 1000);
    gauge();
  }

  /** Waits for `work`, or until the entry is abandoned at stop (then resolves undefined: check `entry.state`). */
  function unlessAbandoned<T>(entry: Entry, work: () => T | Promise<T>): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      entry.abandon = resolve as () => void;
      Promise.resolve(work()).then(resolve, reject);
    });
  }

  /** Handles and settles one message (never rejects); resolves once it is settled or abandoned. */
  async function process(entry: Entry): Promise<void> {
    const id = entry.message.envelopeId;
    const dedupe = options.dedupe;
    let claimed = false;
    try {
      const early = notYetDue(entry.message.attributes);
      if (early > 0) {
        // A delayed message on a FIFO queue (see ATTR_NOT_BEFORE): hidden until due, unhandled.
        entry.state = 'settling';
        log.debug({ messageId: entry.message.messageId, afterSeconds: early }, 'not due yet; hidden until then');
        return await visibilityTo(entry, early);
      }
      if (id !== undefined && dedupe) {
        // The same envelope id held twice by this consumer: the second waits for the first.
        for (let prior = byEnvelope.get(id); prior; prior = byEnvelope.get(id)) {
          const wait = prior.finished;
          await unlessAbandoned(entry, () => wait);
          entry.abandon = undefined;
          if (entry.state === 'abandoned') return;
        }
        if (dedupe.has(id)) return await settle(entry, { status: 'duplicate' });
        byEnvelope.set(id, entry);
        claimed = true;
      }
      const started = performance.now();
      let answer: unknown;
      let thrown: { code: string } | undefined;
      try {
        answer = await unlessAbandoned(entry, () => handler(entry.message, entry.controller.signal));
      } catch (err) {
        thrown = { code: errorCode(err) };
      }
      entry.abandon = undefined;
      if (entry.state === 'abandoned') return;
      let result: HandlerResult;
      let outcome: string;
      if (thrown) {
        result = { status: 'retry', reason: thrown.code };
        outcome = 'error';
        log.warn({ messageId: entry.message.messageId, envelopeId: id, code: result.reason }, 'handler threw; will retry');
      } else {
        result = isHandlerResult(answer) ? answer : { status: 'retry', reason: TRANSPORT_ERRORS.CR_TRANSPORT_INVALID_HANDLER_RESULT.code };
        outcome = result.status;
      }
      metrics?.handlerDuration.observe({ queue, outcome }, (performance.now() - started) / 1000);
      entry.state = 'settling';
      await settle(entry, result);
    } catch (err) {
      log.error({ messageId: entry.message.messageId, code: errorCode(err) }, 'settling failed');
    } finally {
      if (claimed) byEnvelope.delete(id!);
      inFlight.delete(entry.handle);
      gauge();
      notify();
    }
  }

  async function settle(entry: Entry, result: HandlerResult): Promise<void> {
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
        const seconds = Math.min(43_200, Math.max(0, Math.round(after)));
        metrics?.retried.inc({ queue });
        log.info({ ...ids, reason: safeReason(result.reason), afterSeconds: after }, 'retry later');
        if (options.retryAsNewMessage && seconds <= MAX_DELAY_SECONDS && !entry.message.released && (await sendAgain(entry, seconds))) {
          await remove(entry);
          return;
        }
        return visibilityTo(entry, seconds);
      }
      case 'quarantine':
      case 'dead-letter': {
        const reason = safeReason(result.reason);
        const toQuarantine = result.status === 'quarantine';
        if (entry.message.released) {
          // The handler let the ciphertext go: no copy can be made, and never a delete without one.
          log.error({ ...ids, reason }, `${result.status} asked after the body was released; retrying later instead`);
          return settle(entry, { status: 'retry', reason });
        }
        const extra: SqsAttributes = { [ATTR_REASON]: stringAttribute(reason), [ATTR_SOURCE_QUEUE]: stringAttribute(queue) };
        extra[toQuarantine ? ATTR_QUARANTINED_AT : ATTR_DEAD_LETTERED_AT] = stringAttribute(new Date().toISOString());
        const sent = await forwardMessage(client, {
          queueUrl: toQuarantine ? target.quarantineUrl : target.dlqUrl,
          body: entry.message.body,
          attributes: { ...copyAttributes(entry.message.attributes), ...extra },
          ...(target.fifo ? { fifo: fifoCopyIds(entry.message, target) } : {}),
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

  /**
   * The message again, as a new one due in `seconds` (`retryAsNewMessage`): the same body and attributes but
   * an earlier `cr-not-before`; on FIFO, its group and the received message's id as deduplication id. False
   * (logged) when SQS did not take it.
   */
  async function sendAgain(entry: Entry, seconds: number): Promise<boolean> {
    const { [ATTR_NOT_BEFORE]: _due, ...attributes } = copyAttributes(entry.message.attributes);
    const sent = await forwardMessage(client, {
      queueUrl,
      body: entry.message.body,
      attributes: target.fifo && seconds > 0 ? { ...attributes, [ATTR_NOT_BEFORE]: stringAttribute(String(Date.now() + seconds * 1000)) } : attributes,
      ...(target.fifo ? { fifo: { groupId: entry.message.groupId ?? fifoGroupOf(target, entry.message.messageId), deduplicationId: entry.message.messageId } } : { delaySeconds: seconds }),
    });
    if (!sent.ok) log.warn({ messageId: entry.message.messageId, envelopeId: entry.message.envelopeId, code: sent.code }, 'could not send the message again for its retry; hiding it instead');
    return sent.ok;
  }

  /** Deletes the message (batched with others); false, counted and logged, when it will come back. */
  function remove(entry: Entry): Promise<boolean> {
    return ops.remove(entry.handle, { messageId: entry.message.messageId, envelopeId: entry.message.envelopeId });
  }

  /** Changes the message's visibility (batched with others); a failure is counted and logged. */
  function visibilityTo(entry: Entry, seconds: number): Promise<void> {
    return ops.setVisibility(entry.handle, seconds, { messageId: entry.message.messageId, envelopeId: entry.message.envelopeId });
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
      const handles = [...inFlight.values()].filter((e) => e.state !== 'abandoned').map((e) => e.handle);
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
    const rest = [...inFlight.values()].filter((e) => e.state === 'handling');
    for (const e of rest) {
      e.state = 'abandoned';
      e.controller.abort();
      e.abandon?.();
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

/** Longest a message can be hidden at once (the SQS visibility timeout limit, 12 hours). */
const MAX_VISIBILITY_SECONDS = 43_200;

/** Longest delay of a message sent (SQS's DelaySeconds limit, 15 minutes). */
const MAX_DELAY_SECONDS = 900;

/** Whole seconds until a message's `cr-not-before` (0 when absent, malformed or due), at most 12 hours. */
function notYetDue(attributes: SqsAttributes): number {
  const at = Number(attributeString(attributes, ATTR_NOT_BEFORE));
  if (!Number.isFinite(at)) return 0;
  const seconds = Math.ceil((at - Date.now()) / 1000);
  return seconds > 0 ? Math.min(seconds, MAX_VISIBILITY_SECONDS) : 0;
}

/** MessageGroupId and MessageDeduplicationId of a copy to a FIFO quarantine queue or DLQ: the original's group, the envelope id. */
function fifoCopyIds(message: HeldMessage, queue: ResolvedQueue): { groupId: string; deduplicationId: string } {
  const id = message.envelopeId ?? message.messageId;
  return { groupId: message.groupId ?? fifoGroupOf(queue, id), deduplicationId: id };
}

function validateConsumerOptions(options: ConsumerOptions): void {
  checkQueue('consumer', options.queue);
  checkInteger('consumer', 'maxInFlight', options.maxInFlight, 1);
  checkInteger('consumer', 'batchSize', options.batchSize, 1, 10);
  checkInteger('consumer', 'waitTimeSeconds', options.waitTimeSeconds, 0, 20);
  checkInteger('consumer', 'visibilityTimeoutSeconds', options.visibilityTimeoutSeconds, 1, MAX_VISIBILITY_SECONDS);
  checkNumber('consumer', 'heartbeatIntervalSeconds', options.heartbeatIntervalSeconds, 0, true);
  checkNumber('consumer', 'retryBaseSeconds', options.retryBaseSeconds, 0);
  checkNumber('consumer', 'retryMaxSeconds', options.retryMaxSeconds, options.retryBaseSeconds ?? 0);
  checkNumber('consumer', 'receiveErrorBaseMs', options.receiveErrorBaseMs, 0);
  checkNumber('consumer', 'receiveErrorMaxMs', options.receiveErrorMaxMs, options.receiveErrorBaseMs ?? 0);
  checkNumber('consumer', 'lingerMs', options.lingerMs, 0);
}

function isHandlerResult(value: unknown): value is HandlerResult {
  const status = (value as { status?: unknown } | null)?.status;
  return status === 'done' || status === 'retry' || status === 'quarantine' || status === 'dead-letter' || status === 'release' || status === 'duplicate';
}
