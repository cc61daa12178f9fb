import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import { TRANSPORT_ERRORS } from './errors.ts';

/** SQS message attribute map, as the SDK types it. */
export type SqsAttributes = Record<string, MessageAttributeValue>;

/** Wire attribute: the format version (`1`). */
export const ATTR_VERSION = 'cr-version';
/** Wire attribute: the envelope id (UUIDv7), the idempotency key. */
export const ATTR_ENVELOPE_ID = 'cr-envelope-id';
/** Wire attribute: the signer's primary-key fingerprint. */
export const ATTR_SIGNER = 'cr-signer';
/** Added on quarantine and consumer dead-letter: the reason code. */
export const ATTR_REASON = 'cr-reason';
/** Added on quarantine and consumer dead-letter: the logical queue the message came from. */
export const ATTR_SOURCE_QUEUE = 'cr-source-queue';
/** Added on quarantine: when it was quarantined (RFC 3339). */
export const ATTR_QUARANTINED_AT = 'cr-quarantined-at';
/** Added on consumer dead-letter: when it was dead-lettered (RFC 3339). */
export const ATTR_DEAD_LETTERED_AT = 'cr-dead-lettered-at';
/** The wire format version this code reads and writes. */
export const WIRE_VERSION = '1';

/** Quarantine reason: `cr-version` missing or not a supported version. */
export const REASON_UNSUPPORTED_VERSION = TRANSPORT_ERRORS.CR_TRANSPORT_UNSUPPORTED_VERSION.code;
/** Quarantine reason: `cr-envelope-id` missing or not a UUID. */
export const REASON_ENVELOPE_ID_INVALID = TRANSPORT_ERRORS.CR_TRANSPORT_ENVELOPE_ID_INVALID.code;
/**
 * Added by the producer on a FIFO queue in place of a per-message delay (which FIFO queues
 * refuse): epoch ms before which the consumer does not hand the message to its handler.
 */
export const ATTR_NOT_BEFORE = 'cr-not-before';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REASON = /^[A-Za-z0-9_.:-]{1,80}$/;

/** A String-typed SQS attribute. */
export function stringAttribute(value: string): MessageAttributeValue {
  return { DataType: 'String', StringValue: value };
}

/** The string value of an attribute, or undefined when absent or not a string. */
export function attributeString(attributes: SqsAttributes | undefined, name: string): string | undefined {
  const value = attributes?.[name];
  return value !== undefined && typeof value.StringValue === 'string' ? value.StringValue : undefined;
}

/** The envelope id attribute when it is a well-formed UUID, else undefined (never trusts free text). */
export function envelopeIdOf(attributes: SqsAttributes | undefined): string | undefined {
  const id = attributeString(attributes, ATTR_ENVELOPE_ID);
  return id !== undefined && UUID.test(id) ? id.toLowerCase() : undefined;
}

/** Result of {@link checkWireAttributes}. */
export type WireAttributeCheck =
  | { ok: true; version: string; envelopeId: string; signer: string | undefined }
  | { ok: false; reason: string };

/**
 * Checks the wire attributes of a received message before any decryption: a supported
 * `cr-version` and a UUID `cr-envelope-id`. A handler quarantines with `reason` when not ok.
 */
export function checkWireAttributes(attributes: SqsAttributes | undefined): WireAttributeCheck {
  if (attributeString(attributes, ATTR_VERSION) !== WIRE_VERSION) return { ok: false, reason: REASON_UNSUPPORTED_VERSION };
  const envelopeId = envelopeIdOf(attributes);
  if (envelopeId === undefined) return { ok: false, reason: REASON_ENVELOPE_ID_INVALID };
  return { ok: true, version: WIRE_VERSION, envelopeId, signer: attributeString(attributes, ATTR_SIGNER) };
}

/** A reason safe for an attribute, a metric label and the audit trail: a code, else `CR_REASON_INVALID`. */
export function safeReason(reason: unknown): string {
  return typeof reason === 'string' && REASON.test(reason) ? reason : TRANSPORT_ERRORS.CR_REASON_INVALID.code;
}
