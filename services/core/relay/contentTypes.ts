import { httpErrors } from '../http/errors.ts';
import { RelayPathError } from './errors.ts';

/** A payload format care-relay carries, with how its body travels in the envelope. */
export interface PayloadFormat {
  /** Canonical media type put in the envelope. */
  contentType: string;
  /** `utf8` for text formats, `base64` for anything else. */
  bodyEncoding: 'utf8' | 'base64';
  /** A cheap structural check; returns what is wrong, or undefined. Never echoes the payload. */
  check(body: Buffer): string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A text format: the body must be UTF-8, then `check` looks at the text. */
function textFormat(contentType: string, check: (text: string) => string | undefined): PayloadFormat {
  return {
    contentType,
    bodyEncoding: 'utf8',
    check(body) {
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        return 'expected UTF-8 text';
      }
      return check(text);
    },
  };
}

const fhirJson = textFormat('application/fhir+json', (text) => {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'expected a JSON document';
  }
  if (typeof doc !== 'object' || doc === null || typeof (doc as { resourceType?: unknown }).resourceType !== 'string') {
    return 'expected a FHIR resource (a JSON object with resourceType)';
  }
  return undefined;
});

// MLLP framing bytes are transport, not message: a partner must send the bare message.
const hl7v2 = textFormat('application/hl7-v2', (text) => (text.startsWith('MSH|') ? undefined : 'expected an HL7 v2 message starting with an MSH segment'));

const cdaXml = textFormat('application/xml', (text) => {
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  if (!trimmed.startsWith('<')) return 'expected an XML document';
  // A DOCTYPE can carry entity expansion attacks; C-CDA never needs one.
  if (/<!DOCTYPE/i.test(trimmed)) return 'XML with a DOCTYPE is not accepted';
  return undefined;
});

/** Media types accepted on the wire, mapped to their canonical format. */
const formats = new Map<string, PayloadFormat>([
  ['application/fhir+json', fhirJson],
  ['application/json+fhir', fhirJson],
  ['application/hl7-v2', hl7v2],
  ['x-application/hl7-v2+er7', hl7v2],
  ['application/hl7-v2+er7', hl7v2],
  ['application/xml', cdaXml],
  ['text/xml', cdaXml],
  ['application/cda+xml', cdaXml],
]);

/** Every media type the relay accepts (for parsers and the OpenAPI document). */
export const ACCEPTED_MEDIA_TYPES: readonly string[] = [...formats.keys()];

/** The canonical media type of an accepted type or alias (`text/xml` → `application/xml`), or undefined if not accepted. */
export function canonicalMediaType(type: string): string | undefined {
  return formats.get(type.trim().toLowerCase())?.contentType;
}

/** The bare media type of a Content-Type header value, lower-cased, without parameters. */
export function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The format for a Content-Type header, or a 415 RelayError naming what is accepted. */
export function formatFor(header: string | undefined, allowed: readonly string[] = ACCEPTED_MEDIA_TYPES): PayloadFormat {
  const type = mediaTypeOf(header);
  const format = formats.get(type);
  // `allowed` may name aliases (a partners file can): compare canonical types.
  if (!format || !allowed.some((a) => canonicalMediaType(a) === format.contentType)) {
    throw httpErrors.unsupportedMediaType(`Content-Type "${type || '(none)'}" is not accepted here; expected one of ${allowed.join(', ')}.`);
  }
  return format;
}

/** Checks a body against its format; throws a 400 RelayError saying what was expected. */
export function checkPayload(format: PayloadFormat, body: Buffer): void {
  if (body.length === 0) throw new RelayPathError('CR_PAYLOAD_EMPTY', 'the request body is empty; expected a payload');
  const problem = format.check(body);
  if (problem) throw new RelayPathError('CR_PAYLOAD_MALFORMED', `${format.contentType}: ${problem}`);
}
