import { createHash } from 'node:crypto';
import { z } from 'zod';
import { EnvelopeError } from './errors.ts';
import { UUIDV7_PATTERN, uuidv7 } from './uuidv7.ts';

/** How `body` is carried in the JSON: text as is, or binary as standard base64. */
export type BodyEncoding = 'utf8' | 'base64';

/** The wire format version this code reads and writes (also the `cr-version` attribute). */
export const ENVELOPE_VERSION = 1;

/** The signed and encrypted JSON envelope (DESIGN, wire format v1). */
export interface Envelope {
  /** Format version: always 1. */
  v: 1;
  /** UUIDv7, lower case; the idempotency key end to end. */
  id: string;
  /** What the message is, e.g. `care.submission`, `chart.update`, `delivery.receipt`. */
  kind: string;
  /** Sending service name. */
  from: string;
  /** Receiving service name; the receiver rejects what is not addressed to it. */
  to: string;
  /** Logical queue (direction) the message was sent on, e.g. `interface-to-app`. */
  queue: string;
  /** RFC 3339 UTC timestamp (`...Z`) of sealing. */
  sentAt: string;
  /** Partner id, for submissions. */
  partner?: string;
  /** Media type of `body`, e.g. `application/fhir+json`. */
  contentType: string;
  /** The payload, encoded per `bodyEncoding`. */
  body: string;
  /** `utf8` (body is the text) or `base64` (body is the standard base64 of the bytes). */
  bodyEncoding: BodyEncoding;
  /** Lower-case hex SHA-256 of the decoded body bytes. */
  sha256: string;
}

/** What a caller provides to {@link buildEnvelope}; the id, time and digest are computed. */
export interface EnvelopeInput {
  /** Message kind, e.g. `care.submission`. */
  kind: string;
  /** Sending service name. */
  from: string;
  /** Receiving service name. */
  to: string;
  /** Logical queue name. */
  queue: string;
  /** Partner id (submissions only). */
  partner?: string;
  /** Media type of the body. */
  contentType: string;
  /** Text (sent as `utf8` unless `bodyEncoding` says it is already base64) or bytes (sent as `base64`). */
  body: string | Uint8Array;
  /** For a string body: `utf8` (default) or `base64` when the string is already base64. */
  bodyEncoding?: BodyEncoding;
  /** A UUIDv7 to reuse (e.g. an idempotency key already assigned); a new one by default. */
  id?: string;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const KIND = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
const PARTNER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TOKEN = "[A-Za-z0-9!#$&^_.+-]+";
const CONTENT_TYPE = new RegExp(`^${TOKEN}/${TOKEN}( *; *${TOKEN}=(${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);
const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** True when `value` is an RFC 3339 timestamp in UTC (`Z`) naming a real instant. */
export function isRfc3339Utc(value: string): boolean {
  const m = RFC3339_UTC.exec(value);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return (
    t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d &&
    t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s
  );
}

/** True when `value` is canonical standard base64 (padding required, no line breaks). */
export function isCanonicalBase64(value: string): boolean {
  return BASE64.test(value) && Buffer.from(value, 'base64').toString('base64') === value;
}

const envelopeSchema = z
  .strictObject({
    v: z.literal(1),
    id: z.string().regex(UUIDV7_PATTERN, 'expected a lower-case UUIDv7'),
    kind: z.string().max(64).regex(KIND, 'expected a dotted lower-case name like care.submission'),
    from: z.string().regex(NAME, 'expected a lower-case service name'),
    to: z.string().regex(NAME, 'expected a lower-case service name'),
    queue: z.string().regex(NAME, 'expected a lower-case queue name'),
    sentAt: z.string().refine(isRfc3339Utc, 'expected an RFC 3339 UTC timestamp ending in Z'),
    partner: z.string().regex(PARTNER, 'expected a partner id ([A-Za-z0-9._-], up to 128)').optional(),
    contentType: z.string().max(255).regex(CONTENT_TYPE, 'expected a media type'),
    body: z.string().refine((s) => s.isWellFormed(), 'expected well-formed Unicode text'),
    bodyEncoding: z.enum(['utf8', 'base64']),
    sha256: z.string().regex(SHA256_HEX, 'expected 64 lower-case hex digits'),
  })
  .refine((e) => e.bodyEncoding !== 'base64' || isCanonicalBase64(e.body), {
    path: ['body'],
    message: 'expected canonical standard base64 (bodyEncoding is base64)',
  });

/**
 * Checks `value` against wire format v1, strictly: unknown or missing fields, wrong
 * types and malformed values throw EnvelopeError `CR_ENVELOPE_MALFORMED`. Does not check the digest.
 */
export function validateEnvelope(value: unknown): Envelope {
  const result = envelopeSchema.safeParse(value);
  if (result.success) return result.data as Envelope;
  const issue = result.error.issues[0]!;
  // Field names only: never echo values (they may be PHI) or unknown keys (attacker-chosen).
  if (issue.code === 'unrecognized_keys') {
    throw new EnvelopeError('CR_ENVELOPE_MALFORMED', `envelope has ${issue.keys.length} unknown field(s); wire format v1 allows none`);
  }
  const where = issue.path.length > 0 ? `envelope field "${issue.path.join('.')}"` : 'envelope';
  const missing = issue.code === 'invalid_type' && issue.input === undefined;
  throw new EnvelopeError('CR_ENVELOPE_MALFORMED', `${where}: ${missing ? 'missing' : issue.message}`);
}

/** The decoded body bytes of an envelope (UTF-8 of the text, or the base64-decoded bytes). */
export function bodyBytes(envelope: Pick<Envelope, 'body' | 'bodyEncoding'>): Uint8Array {
  return envelope.bodyEncoding === 'base64' ? Buffer.from(envelope.body, 'base64') : Buffer.from(envelope.body, 'utf8');
}

/** Lower-case hex SHA-256 of the decoded body: the canonical `sha256` rule. */
export function bodySha256(envelope: Pick<Envelope, 'body' | 'bodyEncoding'>): string {
  return createHash('sha256').update(bodyBytes(envelope)).digest('hex');
}

/** True when the envelope's `sha256` matches its decoded body. */
export function digestMatches(envelope: Envelope): boolean {
  return bodySha256(envelope) === envelope.sha256;
}

/** Builds a valid envelope: new UUIDv7 id (unless given), `sentAt` from `now`, body digest. Throws `CR_ENVELOPE_MALFORMED`. */
export function buildEnvelope(input: EnvelopeInput, now: Date = new Date()): Envelope {
  let body: string;
  let bodyEncoding: BodyEncoding;
  if (typeof input.body === 'string') {
    body = input.body;
    bodyEncoding = input.bodyEncoding ?? 'utf8';
    if (bodyEncoding === 'base64' && !isCanonicalBase64(body)) {
      throw new EnvelopeError('CR_ENVELOPE_MALFORMED', 'envelope field "body": expected canonical standard base64 (bodyEncoding is base64)');
    }
  } else if (input.body instanceof Uint8Array) {
    if (input.bodyEncoding === 'utf8') {
      throw new EnvelopeError('CR_ENVELOPE_MALFORMED', 'a byte body is always sent as base64; pass a string for utf8');
    }
    body = Buffer.from(input.body.buffer, input.body.byteOffset, input.body.byteLength).toString('base64');
    bodyEncoding = 'base64';
  } else {
    throw new EnvelopeError('CR_ENVELOPE_MALFORMED', 'envelope field "body": expected a string or bytes');
  }
  const envelope: Record<string, unknown> = {
    v: ENVELOPE_VERSION,
    id: input.id ?? uuidv7(now.getTime()),
    kind: input.kind,
    from: input.from,
    to: input.to,
    queue: input.queue,
    sentAt: now.toISOString(),
    ...(input.partner === undefined ? {} : { partner: input.partner }),
    contentType: input.contentType,
    body,
    bodyEncoding,
    sha256: bodySha256({ body, bodyEncoding }),
  };
  return validateEnvelope(envelope);
}

/** The JSON text of an envelope, fields in wire-format order (what is signed and encrypted). */
export function encodeEnvelope(envelope: Envelope): string {
  const { v, id, kind, from, to, queue, sentAt, partner, contentType, body, bodyEncoding, sha256 } = envelope;
  return JSON.stringify({ v, id, kind, from, to, queue, sentAt, partner, contentType, body, bodyEncoding, sha256 });
}

/** Parses decrypted plaintext: strict UTF-8, JSON, then {@link validateEnvelope}. Throws `CR_ENVELOPE_MALFORMED`. */
export function decodeEnvelope(plaintext: Uint8Array | string): Envelope {
  let text: string;
  if (typeof plaintext === 'string') {
    text = plaintext;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plaintext);
    } catch (err) {
      throw new EnvelopeError('CR_ENVELOPE_MALFORMED', 'plaintext is not valid UTF-8', err);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the input: keep it out of the error.
    throw new EnvelopeError('CR_ENVELOPE_MALFORMED', 'plaintext is not JSON');
  }
  return validateEnvelope(value);
}
