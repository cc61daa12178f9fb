import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import { errorCode } from './errors.ts';
import type { ResolvedQueue } from './queues.ts';

/**
 * The maxReceiveCount of a queue's RedrivePolicy (GetQueueAttributes), or undefined when the
 * queue has none or it cannot be read (logged; the caller then never predicts a redrive).
 */
export async function readMaxReceiveCount(client: SQSClient, queue: ResolvedQueue, logger: Logger = silentLogger): Promise<number | undefined> {
  try {
    const res = await client.send(new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ['RedrivePolicy'] }));
    const policy = res.Attributes?.RedrivePolicy;
    if (!policy) return undefined;
    const count = Number((JSON.parse(policy) as { maxReceiveCount?: unknown }).maxReceiveCount);
    return Number.isInteger(count) && count >= 1 ? count : undefined;
  } catch (err) {
    logger.warn({ queue: queue.logical, code: errorCode(err) }, 'could not read the redrive policy; no dead-letter receipts for it');
    return undefined;
  }
}
