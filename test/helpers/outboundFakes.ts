// Fakes for the outbound path's unit tests: a producer that records what it sent.
import type { Producer } from '../../services/core/transport/producer.ts';

/** A producer that records the id of each message it was asked to send, and sends nothing. */
export function recordingProducer(): Producer & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    queueUrl: 'http://sqs/q',
    queue: {} as never,
    send: async (m) => (sent.push(m.id), { id: m.id, messageId: `m-${m.id}` }),
    sendBatch: () => Promise.reject(new Error('not used')),
  };
}
