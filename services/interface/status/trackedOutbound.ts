import type { Outbound } from '../../core/relay/outbound.ts';
import type { SubmissionStatusTracker } from './submissionStatus.ts';

/**
 * The intake's outbound path, recording each partner submission's status: `accepted` before
 * the send (with the id decided for it; written while the payload is sealed), `queued` once SQS
 * took it. HTTP and MLLP intake both send through it; other kinds (receipts, checkpoints) pass untouched.
 */
export function trackedOutbound(outbound: Outbound, status: SubmissionStatusTracker): Outbound {
  return {
    async send(payload, beforeSend) {
      if (payload.kind !== 'care.submission' || !payload.id || !payload.partner) return outbound.send(payload, beforeSend);
      const { id: decided, partner } = payload;
      // `accepted` is written while the payload is sealed (the two round trips overlap); nothing is sent unless it was.
      const id = await outbound.send(payload, async () => {
        await Promise.all([status.accepted(decided, partner), beforeSend?.()]);
      });
      await status.queued(id);
      return id;
    },
    recordCopy: (copy) => outbound.recordCopy(copy),
  };
}
