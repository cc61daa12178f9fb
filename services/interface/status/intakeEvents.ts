import type { Outbound } from '../../core/relay/outbound.ts';
import type { SubmissionStatusEvents } from './events.ts';

/**
 * THE ONE PLACE where intake publishes submission status changes: `accepted` (the relay took the
 * submission, timed when it was handed to the outbound path) then `queued` (SQS accepted the
 * sealed envelope), both once the send succeeded, for `care.submission` envelopes only (HTTP and
 * MLLP intake share the outbound path; an idempotent replay sends nothing and publishes nothing).
 * The submission status store takes this over when it publishes these two itself: then this
 * wrapper goes, and nothing else changes.
 */
export function publishingIntakeOutbound(outbound: Outbound, events: SubmissionStatusEvents, now: () => Date = () => new Date()): Outbound {
  return {
    async send(payload) {
      const acceptedAt = now().toISOString();
      const id = await outbound.send(payload);
      if (payload.kind === 'care.submission' && payload.partner) {
        events.publish({ submissionId: id, partner: payload.partner, status: 'accepted', at: acceptedAt });
        events.publish({ submissionId: id, partner: payload.partner, status: 'queued', at: now().toISOString() });
      }
      return id;
    },
  };
}
