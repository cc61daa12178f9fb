import type { Message } from '@aws-sdk/client-sqs';
import { envelopeIdOf, type SqsAttributes } from './attributes.ts';
import type { ReceivedMessage } from './consumerTypes.ts';

const NO_ATTRIBUTES: SqsAttributes = Object.freeze({}) as SqsAttributes;

/**
 * A received message as the consumer holds it. The ciphertext (body, attributes, FIFO group)
 * is needed only to copy the message to quarantine or the DLQ; `releaseBody` drops it for
 * messages that may be held a long time (the app inbox) once that can no longer happen.
 */
export class HeldMessage implements ReceivedMessage {
  /** SQS message id. */
  readonly messageId: string;
  /** The body as received (ciphertext), or '' once released; never log it. */
  body: string;
  /** The message attributes as received, or none once released. */
  attributes: SqsAttributes;
  /** `cr-envelope-id` when it is a well-formed UUID. */
  readonly envelopeId: string | undefined;
  /** How many times SQS has delivered it. */
  readonly receiveCount: number;
  /** Logical queue name it came from. */
  readonly queue: string;
  #sentMs: number;
  #groupId: string | undefined;
  #released = false;

  /** Reads what the consumer needs from an SDK message that has a body and a receipt handle. */
  constructor(m: Message & { Body: string }, queue: string) {
    const sent = Number(m.Attributes?.SentTimestamp);
    this.messageId = m.MessageId ?? '';
    this.body = m.Body;
    this.attributes = m.MessageAttributes ?? {};
    this.envelopeId = envelopeIdOf(this.attributes);
    this.receiveCount = Number(m.Attributes?.ApproximateReceiveCount ?? 1) || 1;
    this.queue = queue;
    this.#sentMs = Number.isFinite(sent) && sent > 0 ? sent : 0;
    this.#groupId = m.Attributes?.MessageGroupId;
  }

  /** When SQS accepted it, when known. */
  get sentAt(): Date | undefined {
    return this.#sentMs > 0 ? new Date(this.#sentMs) : undefined;
  }

  /** The FIFO message group it was sent with, until released. */
  get groupId(): string | undefined {
    return this.#groupId;
  }

  /** True once the body was released: the message can no longer be copied anywhere. */
  get released(): boolean {
    return this.#released;
  }

  /** Drops the ciphertext; afterwards a quarantine or dead-letter of this message becomes a retry. */
  releaseBody(): void {
    this.#released = true;
    this.body = '';
    this.attributes = NO_ATTRIBUTES;
    this.#groupId = undefined;
  }
}
