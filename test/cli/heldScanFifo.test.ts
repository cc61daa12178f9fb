// The scan under `dlq|quarantine redrive|purge` on a FIFO queue as SQS serves one: a receive hands
// out up to ten messages of a group, in order, and nothing more of that group while any of it is
// hidden. (The emulator hands out one message per group per receive, so it cannot show this.)
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { scanHeld, type ScannedMessage } from '../../services/core/ops/heldScan.ts';

interface FakeMessage {
  id: string;
  reason: string;
  handle: string | null;
}

/** A FIFO queue of one message group, served as SQS serves FIFO queues. */
function fifoQueue(reasons: string[]): { client: SQSClient; remove(handle: string): void; left(): FakeMessage[]; receives: number } {
  const group: FakeMessage[] = reasons.map((reason, i) => ({ id: `m${String(i).padStart(2, '0')}`, reason, handle: null }));
  let handles = 0;
  const fake = {
    receives: 0,
    left: () => group,
    remove(handle: string) {
      const i = group.findIndex((m) => m.handle === handle);
      if (i >= 0) group.splice(i, 1);
    },
    client: {
      send: async (command: unknown) => {
        if (command instanceof ReceiveMessageCommand) {
          fake.receives++;
          if (group.some((m) => m.handle !== null)) return { Messages: [] };
          const batch = group.slice(0, command.input.MaxNumberOfMessages ?? 1);
          for (const m of batch) m.handle = `h${handles++}`;
          return {
            Messages: batch.map((m) => ({
              MessageId: m.id,
              ReceiptHandle: m.handle!,
              Body: 'ciphertext',
              MessageAttributes: { 'cr-reason': { DataType: 'String', StringValue: m.reason } },
              Attributes: { MessageGroupId: 'app-to-interface' },
            })),
          };
        }
        if (command instanceof ChangeMessageVisibilityBatchCommand) {
          const entries = command.input.Entries ?? [];
          for (const e of entries) {
            const m = group.find((x) => x.handle === e.ReceiptHandle);
            if (m && e.VisibilityTimeout === 0) m.handle = null;
          }
          return { Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] };
        }
        throw new Error(`unexpected command ${(command as object).constructor.name}`);
      },
    } as unknown as SQSClient,
  };
  return fake;
}

/** Scans like an action: removes (settles) each message of `reason`, leaves the rest; returns the ids removed. */
async function removeAll(q: ReturnType<typeof fifoQueue>, reason: string, fifo: boolean): Promise<{ removed: string[]; seen: string[] }> {
  const scan = scanHeld(q.client, 'url', 'app-to-interface', 'dlq', { limit: 10_000, waitSeconds: 0, fifo });
  const removed: string[] = [];
  const seen: string[] = [];
  try {
    for (let batch: ScannedMessage[] = await scan.next(); batch.length > 0; batch = await scan.next()) {
      for (const m of batch) {
        seen.push(m.info.messageId);
        if (m.info.reason !== reason) continue;
        q.remove(m.handle);
        scan.settled(m.handle);
        removed.push(m.info.messageId);
      }
    }
  } finally {
    await scan.release();
  }
  return { removed, seen };
}

describe('scanning a FIFO hold queue', () => {
  // 4 left in place, then 12 to act on: the first batch of ten holds 6 of them, the rest are behind.
  const reasons = [...Array(4).fill('CR_EMR_HTTP_400'), ...Array(12).fill('CR_EMR_HTTP_503')] as string[];

  it('reaches messages behind the first batch of a group once those ahead were acted on (it stopped at the first batch)', async () => {
    const q = fifoQueue(reasons);
    const { removed, seen } = await removeAll(q, 'CR_EMR_HTTP_503', true);
    expect(removed).toHaveLength(12);
    // Each message is handed to the action once, though the ones left were read again.
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(16);
    // What was left in place is visible again, in order.
    expect(q.left().map((m) => [m.reason, m.handle])).toEqual(Array(4).fill(['CR_EMR_HTTP_400', null]));
  });

  it('ends when a pass brings nothing new (messages behind ones that stay are out of reach, never a loop)', async () => {
    const q = fifoQueue([...Array(10).fill('CR_EMR_HTTP_400'), ...Array(3).fill('CR_EMR_HTTP_503')] as string[]);
    const { removed, seen } = await removeAll(q, 'CR_EMR_HTTP_503', true);
    expect(removed).toEqual([]);
    expect(seen).toHaveLength(10);
    expect(q.receives).toBeLessThan(10);
    expect(q.left().every((m) => m.handle === null)).toBe(true);
  });

  it('a standard queue is read in one pass', async () => {
    const q = fifoQueue(reasons);
    const { removed } = await removeAll(q, 'CR_EMR_HTTP_503', false);
    expect(removed).toHaveLength(6);
  });
});
