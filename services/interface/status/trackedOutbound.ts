import type { Outbound } from '../../core/relay/outbound.ts';
import type { SubmissionStatusTracker } from './submissionStatus.ts';

/**
 * The intake's outbound path, recording each partner submission's status: `accepted` before
 * the send (with the id decided for it; written while the payload is sealed), `queued` once SQS
 * took it (written while the send's audit lines are). HTTP and MLLP intake both send through it; other kinds (receipts, checkpoints) pass untouched.
 */
export function trackedOutbound(outbound: Outbound, status: SubmissionStatusTracker): Outbound {
  return {
    async send(payload, beforeSend, afterSend) {
      if (payload.kind !== 'care.submission' || !payload.id || !payload.partner) return outbound.send(payload, beforeSend, afterSend);
      const { id: decided, partner } = payload;
      // `accepted` is written while the payload is sealed (the two round trips overlap); nothing is sent unless it was.
      // `queued` (which never throws) is written while the send's audit lines are.
      return outbound.send(
        payload,
        async () => {
          await Promise.all([status.accepted(decided, partner), beforeSend?.()]);
        },
        async (id) => {
          await Promise.all([status.queued(id), afterSend?.(id)]);
        },
      );
    },
    recordCopy: (copy) => outbound.recordCopy(copy),
  };
}
