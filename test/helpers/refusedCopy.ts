import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import type { OwnKeyring, PeerKeyring } from '../../services/core/keys/keyring.ts';
import { waitFor } from './wait.ts';

/** What {@link swapForRefusedCopy} needs: the queue, and the interface's keys (it signs the copy). */
export interface SwapOptions {
  client: SQSClient;
  /** URL of `interface-to-app`. */
  queueUrl: string;
  /** FIFO queue: the copy needs a group and deduplication id. */
  fifo: boolean;
  /** The interface's own keys and pinned peers. */
  own: OwnKeyring;
  peers: PeerKeyring;
  /** The submission's envelope id (the app must not have received it yet: its consumer is paused). */
  id: string;
  /** Partner id of the submission. */
  partner: string;
  /** Body of the copy (tests plant PHI here). */
  body: string;
}

/**
 * Takes the sealed submission `id` off `interface-to-app` and puts in its place a copy with the
 * same id, genuinely signed by the interface but sealed for the wrong queue: what an interface
 * bug would send. The app opens it, verifies the signature and quarantines it
 * (CR_ENVELOPE_WRONG_QUEUE), so it can attribute the refusal to the submission.
 */
export async function swapForRefusedCopy(options: SwapOptions): Promise<void> {
  await waitFor(
    async () => {
      const got = await options.client.send(new ReceiveMessageCommand({ QueueUrl: options.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'], VisibilityTimeout: 30 }));
      let found = false;
      for (const m of got.Messages ?? []) {
        if (m.MessageAttributes?.['cr-envelope-id']?.StringValue === options.id) {
          await options.client.send(new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: m.ReceiptHandle! }));
          found = true;
        } else {
          await options.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: options.queueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 }));
        }
      }
      return found;
    },
    // A long poll the paused consumer abandoned may have taken it: it is back after its visibility timeout.
    { timeoutMs: 90_000, what: `the sealed submission ${options.id} on interface-to-app` },
  );
  const copy = buildEnvelope({ id: options.id, kind: 'care.submission', from: 'interface', to: 'app', queue: 'app-to-interface', partner: options.partner, contentType: 'application/fhir+json', body: options.body });
  const sealed = await seal(copy, options.own, options.peers);
  await options.client.send(
    new SendMessageCommand({
      QueueUrl: options.queueUrl,
      MessageBody: sealed.body,
      MessageAttributes: sealed.attributes,
      ...(options.fifo ? { MessageGroupId: options.id, MessageDeduplicationId: `${options.id}-refused` } : {}),
    }),
  );
}
