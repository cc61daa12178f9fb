import type { EnvelopeEffect } from '../../core/relay/inbound.ts';
import type { Inbox } from './inbox.ts';

/**
 * The effect of a submission on the app service: hold it in the inbox. The handler
 * settles, and the SQS message is deleted, only when the application acknowledges
 * the record; at shutdown the hold is released and SQS redelivers it. The ack learns
 * whether the delete happened (`onDeleted`), so it never confirms a record SQS still holds.
 * Once opened, a held record ends only in done or release: the consumer may drop its
 * ciphertext for the (possibly long) hold.
 */
export function inboxEffect(inbox: Inbox): EnvelopeEffect {
  return async (envelope, message, signal) => {
    message.releaseBody?.();
    const outcome = await inbox.hold(envelope, signal);
    return outcome === 'acked' ? { status: 'done', onDeleted: (deleted) => inbox.deleted(envelope.id, deleted) } : { status: 'release' };
  };
}
