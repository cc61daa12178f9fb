import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import { TransportError, errorCode } from './errors.ts';
import { SQS_MAX_MESSAGE_BYTES } from './size.ts';

/** The logical queues of the relay (DESIGN "Flows"). */
export const LOGICAL_QUEUES = ['interface-to-app', 'app-to-interface', 'app-sms-redaction', 'interface-partner-callbacks'] as const;

/** One of {@link LOGICAL_QUEUES}. */
export type LogicalQueue = (typeof LOGICAL_QUEUES)[number];

/** What a physical queue is for. */
export type QueueRole = 'main' | 'dlq' | 'quarantine';

/** Queue settings; every field but `prefix` has a default. */
export interface QueueLayoutOptions {
  /** Prepended to every logical name (e.g. `prod-`); may be empty. */
  prefix: string;
  /** FIFO queues (names end `.fifo`, deduplication id = envelope id); default false. */
  fifo?: boolean;
  /** Receives before SQS moves a message to the DLQ (redrive); default 5. */
  maxReceiveCount?: number;
  /** SSE-KMS: the customer-managed KMS key (id, ARN or alias) of every queue; SSE-SQS when unset. */
  kmsMasterKeyId?: string;
  /** Default visibility timeout of the main queues, seconds; default 30. */
  visibilityTimeoutSeconds?: number;
  /** Retention of the main queues, seconds; default 4 days. */
  retentionSeconds?: number;
  /** Retention of DLQs and quarantine queues, seconds; default 14 days (the SQS maximum). */
  holdRetentionSeconds?: number;
  /** Default long-poll wait of every queue, seconds (0-20); default 20. */
  receiveWaitSeconds?: number;
  /** Only these logical queues (default all), e.g. the ones one service uses. */
  queues?: readonly LogicalQueue[];
}

/** One physical queue as the deployment should create it. */
export interface QueueDefinition {
  /** Physical queue name (prefix + logical name + role suffix, `.fifo` when FIFO). */
  name: string;
  /** The logical queue it belongs to. */
  logical: LogicalQueue;
  /** Main queue, its DLQ, or its quarantine queue. */
  role: QueueRole;
  /** SQS queue attributes (without RedrivePolicy, which needs the DLQ's ARN: see `redrive`). */
  attributes: Record<string, string>;
  /** Main queues only: the DLQ name and maxReceiveCount for the RedrivePolicy. */
  redrive?: { deadLetterQueue: string; maxReceiveCount: number };
}

/**
 * One logical queue, resolved once: what every producer, consumer and settle operation
 * needs to know about it (names, URLs, FIFO), so that no caller repeats any of it.
 */
export interface ResolvedQueue {
  /** Logical name: the metric label, the audit `queue` and the envelope `queue`. */
  logical: LogicalQueue;
  /** Physical name of the main queue. */
  name: string;
  /** Main queue URL. */
  url: string;
  /** FIFO queues: every send carries a MessageGroupId and a MessageDeduplicationId, never a per-message delay. */
  fifo: boolean;
  /** Dead-letter queue URL. */
  dlqUrl: string;
  /** Quarantine queue URL. */
  quarantineUrl: string;
}

/**
 * How messages of a logical queue are grouped on FIFO queues (docs/architecture.md, "FIFO
 * queues"). `ordered`: messages with the same ordering key share a group, so they are handled in
 * the order sent (chart updates of one record, which the EMR applies in order; a retried one
 * holds up the ones after it in its group, as an MLLP link would, while the other groups flow).
 * `spread`: each message is its own group, so none waits for another (submissions, which the
 * app inbox holds until a reader acks them and would otherwise be shown one at a time;
 * redaction jobs, idempotent, some of them waiting for their delay; partner callback jobs, each
 * signed and sent on its own).
 */
export const FIFO_ORDERING: Readonly<Record<LogicalQueue, 'ordered' | 'spread'>> = {
  'interface-to-app': 'spread',
  'app-to-interface': 'ordered',
  'app-sms-redaction': 'spread',
  // Callback jobs are independent: a partner whose receiver is down must not hold up another's.
  'interface-partner-callbacks': 'spread',
};

/**
 * The MessageGroupId of a message with id `messageId` sent to `queue` when it is FIFO (see
 * {@link FIFO_ORDERING}): its own id on a spread queue; on an ordered queue the queue's name plus
 * the message's ordering key (`app-to-interface-17`), or the queue's name alone without one.
 */
export function fifoGroupOf(queue: Pick<ResolvedQueue, 'logical'>, messageId: string, orderingKey?: string): string {
  if (FIFO_ORDERING[queue.logical] === 'spread') return messageId;
  return orderingKey === undefined ? queue.logical : `${queue.logical}-${orderingKey}`;
}

/** A queue created (or found) by {@link ensureQueues}: URLs plus ARNs. */
export interface EnsuredQueue extends ResolvedQueue {
  /** Main queue ARN. */
  arn: string;
  /** Dead-letter queue ARN (the RedrivePolicy target). */
  dlqArn: string;
}

const DAY = 86_400;

/** The physical name of a logical queue in a role, e.g. `prod-interface-to-app-dlq.fifo`. */
export function physicalQueueName(prefix: string, logical: string, role: QueueRole = 'main', fifo = false): string {
  const suffix = role === 'main' ? '' : `-${role}`;
  return `${prefix}${logical}${suffix}${fifo ? '.fifo' : ''}`;
}

/** The RedrivePolicy attribute value (the exact JSON shape SQS returns, so re-creation is idempotent). */
export function redrivePolicy(deadLetterTargetArn: string, maxReceiveCount: number): string {
  return JSON.stringify({ deadLetterTargetArn, maxReceiveCount });
}

/**
 * The queue definitions, the single source of truth for the deployment (LocalStack init
 * hook, IAM docs, the CLI): for each logical queue its DLQ, its quarantine queue, then itself.
 * Pass `arnOf` to get the main queues' RedrivePolicy rendered into `attributes`.
 */
export function queueDefinitions(options: QueueLayoutOptions, arnOf?: (name: string) => string): QueueDefinition[] {
  const fifo = options.fifo ?? false;
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
    throw new TransportError('CR_TRANSPORT_QUEUE_SETUP_FAILED', `maxReceiveCount must be an integer from 1 to 1000, got ${maxReceiveCount}`);
  }
  const common: Record<string, string> = {
    VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
    ReceiveMessageWaitTimeSeconds: String(options.receiveWaitSeconds ?? 20),
    MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
    ...(fifo ? { FifoQueue: 'true', ContentBasedDeduplication: 'false' } : {}),
    ...(options.kmsMasterKeyId ? { KmsMasterKeyId: options.kmsMasterKeyId, KmsDataKeyReusePeriodSeconds: '300' } : {}),
  };
  const hold = { ...common, MessageRetentionPeriod: String(options.holdRetentionSeconds ?? 14 * DAY) };
  const out: QueueDefinition[] = [];
  for (const logical of options.queues ?? LOGICAL_QUEUES) {
    const dlq = physicalQueueName(options.prefix, logical, 'dlq', fifo);
    out.push({ name: dlq, logical, role: 'dlq', attributes: { ...hold } });
    out.push({ name: physicalQueueName(options.prefix, logical, 'quarantine', fifo), logical, role: 'quarantine', attributes: { ...hold } });
    const attributes: Record<string, string> = { ...common, MessageRetentionPeriod: String(options.retentionSeconds ?? 4 * DAY) };
    if (arnOf) attributes.RedrivePolicy = redrivePolicy(arnOf(dlq), maxReceiveCount);
    out.push({ name: physicalQueueName(options.prefix, logical, 'main', fifo), logical, role: 'main', attributes, redrive: { deadLetterQueue: dlq, maxReceiveCount } });
  }
  return out;
}

async function createOne(client: SQSClient, name: string, attributes: Record<string, string>): Promise<string> {
  try {
    const res = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!res.QueueUrl) throw new Error('CreateQueue returned no QueueUrl');
    return res.QueueUrl;
  } catch (err) {
    const code = errorCode(err);
    const why = /QueueAlreadyExists|QueueNameExists/.test(code)
      ? 'it exists with different attributes (change them with SetQueueAttributes or use another prefix)'
      : `CreateQueue failed (${code})`;
    throw new TransportError('CR_TRANSPORT_QUEUE_SETUP_FAILED', `queue "${name}": ${why}`, { cause: err });
  }
}

async function arnOfUrl(client: SQSClient, name: string, url: string): Promise<string> {
  try {
    const res = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    const arn = res.Attributes?.QueueArn;
    if (!arn) throw new Error('no QueueArn');
    return arn;
  } catch (err) {
    throw new TransportError('CR_TRANSPORT_QUEUE_SETUP_FAILED', `queue "${name}": cannot read its ARN (${errorCode(err)})`, { cause: err });
  }
}

/**
 * Creates every queue idempotently (DLQ and quarantine first, then the main queue with a
 * RedrivePolicy to the DLQ's ARN). Existing queues with the same attributes are fine; a
 * queue with different attributes fails with CR_TRANSPORT_QUEUE_SETUP_FAILED naming it.
 */
export async function ensureQueues<Q extends LogicalQueue = LogicalQueue>(
  client: SQSClient,
  options: QueueLayoutOptions & { queues?: readonly Q[] },
  logger: Logger = silentLogger,
): Promise<Record<Q, EnsuredQueue>> {
  const out = {} as Record<Q, EnsuredQueue>;
  const defs = queueDefinitions(options);
  for (const logical of (options.queues ?? LOGICAL_QUEUES) as readonly Q[]) {
    const mine = defs.filter((d) => d.logical === logical);
    const dlq = mine.find((d) => d.role === 'dlq')!;
    const quarantine = mine.find((d) => d.role === 'quarantine')!;
    const main = mine.find((d) => d.role === 'main')!;
    const dlqUrl = await createOne(client, dlq.name, dlq.attributes);
    const quarantineUrl = await createOne(client, quarantine.name, quarantine.attributes);
    const dlqArn = await arnOfUrl(client, dlq.name, dlqUrl);
    const url = await createOne(client, main.name, { ...main.attributes, RedrivePolicy: redrivePolicy(dlqArn, main.redrive!.maxReceiveCount) });
    const arn = await arnOfUrl(client, main.name, url);
    out[logical] = { logical, name: main.name, url, fifo: options.fifo ?? false, dlqUrl, quarantineUrl, arn, dlqArn };
    logger.info({ queue: logical, name: main.name }, 'queue ready');
  }
  return out;
}

async function urlOf(client: SQSClient, name: string): Promise<string> {
  try {
    const res = await client.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!res.QueueUrl) throw new Error('GetQueueUrl returned no QueueUrl');
    return res.QueueUrl;
  } catch (err) {
    const code = errorCode(err);
    const why = /QueueDoesNotExist|NonExistentQueue/.test(code)
      ? 'does not exist (run `care-relay queues init` or check QUEUE_PREFIX and the region)'
      : `cannot be looked up (${code})`;
    throw new TransportError('CR_TRANSPORT_QUEUE_MISSING', `queue "${name}" ${why}`, { cause: err, details: { queue: name } });
  }
}

/**
 * Looks up the URLs of existing queues (GetQueueUrl only, no creation); a missing queue
 * fails with CR_TRANSPORT_QUEUE_MISSING naming it.
 */
export async function resolveQueues<Q extends LogicalQueue = LogicalQueue>(
  client: SQSClient,
  options: { prefix: string; fifo?: boolean; queues?: readonly Q[] },
): Promise<Record<Q, ResolvedQueue>> {
  const out = {} as Record<Q, ResolvedQueue>;
  const fifo = options.fifo ?? false;
  for (const logical of (options.queues ?? LOGICAL_QUEUES) as readonly Q[]) {
    const name = physicalQueueName(options.prefix, logical, 'main', fifo);
    const [url, dlqUrl, quarantineUrl] = await Promise.all([
      urlOf(client, name),
      urlOf(client, physicalQueueName(options.prefix, logical, 'dlq', fifo)),
      urlOf(client, physicalQueueName(options.prefix, logical, 'quarantine', fifo)),
    ]);
    out[logical] = { logical, name, url, fifo, dlqUrl, quarantineUrl };
  }
  return out;
}
