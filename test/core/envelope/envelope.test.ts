import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bodyBytes,
  buildEnvelope,
  decodeEnvelope,
  digestMatches,
  encodeEnvelope,
  isRfc3339Utc,
  validateEnvelope,
  type EnvelopeInput,
} from '../../../services/core/envelope/envelope.ts';
import { EnvelopeError } from '../../../services/core/envelope/errors.ts';
import { isUuidV7, uuidv7, uuidv7Time } from '../../../services/core/envelope/uuidv7.ts';
import { sampleEnvelope } from './craft.ts';

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const inputArb: fc.Arbitrary<EnvelopeInput> = fc.record(
  {
    kind: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,2}$/),
    from: name,
    to: name,
    queue: name,
    partner: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/),
    contentType: fc.constantFrom('application/fhir+json', 'application/hl7-v2', 'application/xml; charset=utf-8', 'text/plain'),
    body: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.uint8Array({ maxLength: 200 })),
  },
  { requiredKeys: ['kind', 'from', 'to', 'queue', 'contentType', 'body'] },
);

describe('uuidv7', () => {
  it('is a lower-case v7 UUID carrying the time', () => {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const id = uuidv7(t);
    expect(isUuidV7(id)).toBe(true);
    expect(uuidv7Time(id).getTime()).toBe(t);
    expect(new Set(Array.from({ length: 100 }, () => uuidv7(t))).size).toBe(100);
    expect(isUuidV7(crypto.randomUUID())).toBe(false);
    expect(() => uuidv7(-1)).toThrow(RangeError);
  });
});

describe('buildEnvelope', () => {
  it('computes id, sentAt (RFC 3339 UTC) and the sha256 of the decoded body', () => {
    const now = new Date('2026-03-04T05:06:07.089Z');
    const env = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'text/plain', body: 'héllo' }, now);
    expect(env).toMatchObject({ v: 1, sentAt: '2026-03-04T05:06:07.089Z', bodyEncoding: 'utf8' });
    expect(env.sha256).toBe(createHash('sha256').update(Buffer.from('héllo', 'utf8')).digest('hex'));
    expect(uuidv7Time(env.id).getTime()).toBe(now.getTime());
    expect('partner' in env).toBe(false);
  });

  it('sends bytes as base64 and refuses non-canonical base64 strings', () => {
    const env = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/octet-stream', body: new Uint8Array([1, 2, 3]) });
    expect(env).toMatchObject({ body: 'AQID', bodyEncoding: 'base64' });
    expect(() => buildEnvelope({ ...sampleInput(), body: 'AQI', bodyEncoding: 'base64' })).toThrow(EnvelopeError);
    expect(() => buildEnvelope({ ...sampleInput(), body: 'not a kind!', kind: 'Care Submission' })).toThrow(/envelope field "kind"/);
  });

  it('rejects text that is not well-formed Unicode', () => {
    expect(() => buildEnvelope({ ...sampleInput(), body: 'a\ud800b' })).toThrow(/well-formed/);
  });
});

function sampleInput(): EnvelopeInput {
  return { kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'text/plain', body: 'x' };
}

describe('validateEnvelope', () => {
  it('rejects unknown and missing fields without echoing values or unknown names', () => {
    const good = sampleEnvelope();
    const unknown = catchError(() => validateEnvelope({ ...good, patientName: 'Jane Doe' }));
    expect(unknown.code).toBe('CR_ENVELOPE_MALFORMED');
    expect(unknown.message).not.toMatch(/patientName|Jane/);
    const { sha256: _sha, ...missing } = good;
    expect(catchError(() => validateEnvelope(missing)).message).toBe('envelope field "sha256": missing');
    expect(catchError(() => validateEnvelope({ ...good, to: 'Jane Doe' })).message).not.toContain('Jane');
    for (const bad of [null, 1, 'x', [], {}]) expect(catchError(() => validateEnvelope(bad)).code).toBe('CR_ENVELOPE_MALFORMED');
  });

  it('accepts only real RFC 3339 UTC instants', () => {
    expect(isRfc3339Utc('2026-02-28T23:59:59Z')).toBe(true);
    expect(isRfc3339Utc('2026-02-28T23:59:59.123456789Z')).toBe(true);
    for (const bad of ['2026-02-30T00:00:00Z', '2026-02-28T24:00:00Z', '2026-02-28T23:59:59+00:00', '2026-02-28 23:59:59Z', '2026-2-28T23:59:59Z']) {
      expect(isRfc3339Utc(bad)).toBe(false);
    }
  });

  it('property: build, encode, decode round-trips and the digest matches the bytes', () => {
    fc.assert(
      fc.property(inputArb, fc.date({ min: new Date('2000-01-01Z'), max: new Date('2100-01-01Z'), noInvalidDate: true }), (input, now) => {
        const env = buildEnvelope(input, now);
        const decoded = decodeEnvelope(new TextEncoder().encode(encodeEnvelope(env)));
        expect(decoded).toEqual(env);
        expect(digestMatches(decoded)).toBe(true);
        const expected = typeof input.body === 'string' ? new TextEncoder().encode(input.body) : input.body;
        expect(Buffer.from(bodyBytes(decoded)).equals(Buffer.from(expected))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('property: any JSON value or field mutation is a valid envelope or CR_ENVELOPE_MALFORMED, never another error', () => {
    const good = sampleEnvelope();
    const fields = Object.keys(good);
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ field: fc.constantFrom(...fields, 'extra'), value: fc.jsonValue() }).map(({ field, value }) => ({ ...good, [field]: value }))), (value) => {
        try {
          const env = validateEnvelope(value);
          expect(env).toEqual(value);
        } catch (err) {
          expect(err).toBeInstanceOf(EnvelopeError);
          expect((err as EnvelopeError).code).toBe('CR_ENVELOPE_MALFORMED');
        }
      }),
      { numRuns: 500 },
    );
  });
});

function catchError(fn: () => unknown): EnvelopeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EnvelopeError);
    return err as EnvelopeError;
  }
  throw new Error('expected an EnvelopeError');
}
