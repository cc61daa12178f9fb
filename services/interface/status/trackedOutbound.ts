import type { Outbound } from '../../core/relay/outbound.ts';
import type { SubmissionStatusTracker } from './submissionStatus.ts';

/**
 * The intake's outbound path, recording each partner submission's status: `accepted` before
 * the send (with the id decided for it), `queued` once SQS took it. HTTP and MLLP intake both
 * send through it; other kinds (receipts, checkpoints) pass untouched.
 */
export function trackedOutbound(outbound: Outbound, status: SubmissionStatusTracker): Outbound {
  return {
    async send(payload) {
      if (payload.kind !== 'care.submission' || !payload.id || !payload.partner) return outbound.send(payload);
      await status.accepted(payload.id, payload.partner);
      const id = await outbound.send(payload);
      await status.queued(id);
      return id;
    },
  };
}
