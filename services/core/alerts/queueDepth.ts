import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ResolvedQueue } from '../transport/queues.ts';
import type { QueueDepth } from './snapshot.ts';

const ATTRIBUTES = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] as const;

/**
 * Reads the approximate depth of each queue of a service, its DLQ and its quarantine
 * queue (GetQueueAttributes, one call per queue, concurrently). Throws when any call fails:
 * a partial picture would clear alerts that still hold.
 */
export async function pollQueueDepths(sqs: SQSClient, queues: Readonly<Record<string, ResolvedQueue>>, signal?: AbortSignal): Promise<QueueDepth[]> {
  const targets = Object.entries(queues).flatMap(([logical, q]) => [
    { queue: logical, role: 'main' as const, url: q.url },
    { queue: logical, role: 'dlq' as const, url: q.dlqUrl },
    { queue: logical, role: 'quarantine' as const, url: q.quarantineUrl },
  ]);
  return Promise.all(
    targets.map(async (t) => {
      const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: t.url, AttributeNames: [...ATTRIBUTES] }), signal ? { abortSignal: signal } : {});
      const a = res.Attributes ?? {};
      const n = (name: (typeof ATTRIBUTES)[number]): number => Number(a[name] ?? 0) || 0;
      return {
        queue: t.queue,
        role: t.role,
        visible: n('ApproximateNumberOfMessages'),
        inFlight: n('ApproximateNumberOfMessagesNotVisible'),
        delayed: n('ApproximateNumberOfMessagesDelayed'),
      };
    }),
  );
}

/**
 * An upper bound of the oldest waiting message's age in a consumed queue: SQS has no such
 * attribute (CloudWatch's ApproximateAgeOfOldestMessage is not an API call), so when
 * messages are waiting it is the time since the last received message was sent (messages
 * behind it were sent later), or since the consumer started when it has received none.
 */
export function oldestAgeSeconds(visible: number, lastReceivedSentAtMs: number | undefined, startedAtMs: number, now: number): number {
  if (visible <= 0) return 0;
  return Math.max(0, (now - (lastReceivedSentAtMs ?? startedAtMs)) / 1000);
}
