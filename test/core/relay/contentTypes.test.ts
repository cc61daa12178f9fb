// contentTypes: each accepted format and its aliases, the structural checks, bad UTF-8,
// and error details that say what was expected without ever echoing the body.
import { describe, expect, it } from 'vitest';
import { ACCEPTED_MEDIA_TYPES, checkPayload, formatFor, mediaTypeOf } from '../../../services/core/relay/contentTypes.ts';
import { RelayError } from '../../../services/core/errors/relayError.ts';

const PHI = 'Jane Roe 1970-01-01 SSN 123-45-6789';

function failure(fn: () => void): RelayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RelayError);
    return err as RelayError;
  }
  throw new Error('expected a RelayError');
}

describe('formatFor: media types and aliases', () => {
  it.each([
    ['application/fhir+json', 'application/fhir+json', 'utf8'],
    ['application/json+fhir', 'application/fhir+json', 'utf8'],
    ['application/hl7-v2', 'application/hl7-v2', 'utf8'],
    ['application/hl7-v2+er7', 'application/hl7-v2', 'utf8'],
    ['x-application/hl7-v2+er7', 'application/hl7-v2', 'utf8'],
    ['application/xml', 'application/xml', 'utf8'],
    ['text/xml', 'application/xml', 'utf8'],
    ['application/cda+xml', 'application/xml', 'utf8'],
  ])('%s → %s', (header, canonical, encoding) => {
    const format = formatFor(header);
    expect(format.contentType).toBe(canonical);
    expect(format.bodyEncoding).toBe(encoding);
  });

  it('ignores parameters and case', () => {
    expect(formatFor('Application/FHIR+JSON; charset=utf-8; fhirVersion=4.0').contentType).toBe('application/fhir+json');
    expect(mediaTypeOf('  Text/XML ;charset=UTF-8')).toBe('text/xml');
    expect(mediaTypeOf(undefined)).toBe('');
  });

  it('lists every accepted type, aliases included', () => {
    expect([...ACCEPTED_MEDIA_TYPES].sort()).toEqual(
      ['application/cda+xml', 'application/fhir+json', 'application/hl7-v2', 'application/hl7-v2+er7', 'application/json+fhir', 'application/xml', 'text/xml', 'x-application/hl7-v2+er7'].sort(),
    );
  });

  it('refuses other types with 415 naming what is accepted; a partner restriction applies to aliases too', () => {
    for (const header of ['application/json', 'text/plain', '', undefined, 'application/octet-stream']) {
      const err = failure(() => formatFor(header));
      expect([err.code, err.status]).toEqual(['CR_HTTP_UNSUPPORTED_MEDIA_TYPE', 415]);
      expect(err.message).toContain('application/fhir+json');
    }
    expect(failure(() => formatFor(undefined)).message).toContain('(none)');
    const onlyHl7 = ['application/hl7-v2'];
    expect(formatFor('application/hl7-v2+er7', onlyHl7).contentType).toBe('application/hl7-v2');
    expect(failure(() => formatFor('application/json+fhir', onlyHl7)).status).toBe(415);
  });
});

describe('checkPayload', () => {
  const fhir = formatFor('application/fhir+json');
  const hl7 = formatFor('application/hl7-v2');
  const xml = formatFor('application/xml');
  const ok = (format: typeof fhir, text: string | Buffer) => checkPayload(format, Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));
  const malformed = (format: typeof fhir, text: string | Buffer): string => {
    const err = failure(() => ok(format, text));
    expect([err.code, err.status]).toEqual(['CR_PAYLOAD_MALFORMED', 400]);
    return err.message;
  };

  it('accepts a well-formed document of each format', () => {
    expect(() => ok(fhir, '{"resourceType":"Patient","id":"p1"}')).not.toThrow();
    expect(() => ok(hl7, 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|1|P|2.5\r')).not.toThrow();
    expect(() => ok(xml, '\uFEFF  <?xml version="1.0"?><ClinicalDocument/>')).not.toThrow();
  });

  it('an empty body is 400 CR_PAYLOAD_EMPTY', () => {
    const err = failure(() => ok(fhir, ''));
    expect([err.code, err.status]).toEqual(['CR_PAYLOAD_EMPTY', 400]);
  });

  it('FHIR: not JSON, not an object, no resourceType', () => {
    expect(malformed(fhir, '{not json')).toBe('application/fhir+json: expected a JSON document');
    for (const doc of ['[]', 'null', '"Patient"', '{"id":"p1"}', '{"resourceType":7}']) {
      expect(malformed(fhir, doc)).toBe('application/fhir+json: expected a FHIR resource (a JSON object with resourceType)');
    }
  });

  it('HL7 v2: must start with MSH| (no MLLP framing, no leading junk)', () => {
    expect(malformed(hl7, '\x0bMSH|^~\\&|A\x1c\r')).toBe('application/hl7-v2: expected an HL7 v2 message starting with an MSH segment');
    expect(malformed(hl7, 'PID|1||123')).toContain('MSH');
  });

  it('XML: must look like XML and carry no DOCTYPE (entity expansion)', () => {
    expect(malformed(xml, 'hello')).toBe('application/xml: expected an XML document');
    expect(malformed(xml, '<?xml version="1.0"?><!doctype lolz [<!ENTITY lol "lol">]><ClinicalDocument/>')).toBe('application/xml: XML with a DOCTYPE is not accepted');
  });

  it('bad UTF-8 is refused in every text format: overlong, lone surrogate, truncated, invalid byte', () => {
    const bad = [Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82]), Buffer.from([0xff])];
    for (const format of [fhir, hl7, xml]) {
      for (const tail of bad) {
        const prefix = format === fhir ? '{"resourceType":"Patient","x":"' : format === hl7 ? 'MSH|^~\\&|' : '<a>';
        expect(malformed(format, Buffer.concat([Buffer.from(prefix), tail])), format.contentType).toBe(`${format.contentType}: expected UTF-8 text`);
      }
    }
  });

  it('error details never echo the body: hostile payloads carrying PHI come back as fixed text', () => {
    const hostile: Array<[typeof fhir, string | Buffer]> = [
      [fhir, `{"resourceType":"Patient","name":"${PHI}"`],
      [fhir, `{"name":"${PHI}"}`],
      [hl7, `PID|||${PHI}`],
      [xml, `<!DOCTYPE x><a>${PHI}</a>`],
      [xml, PHI],
      [fhir, Buffer.concat([Buffer.from(`{"resourceType":"${PHI}`), Buffer.from([0xff])])],
    ];
    for (const [format, payload] of hostile) {
      const message = malformed(format, payload);
      for (const piece of ['Jane', 'Roe', '123-45-6789', '1970']) expect(message).not.toContain(piece);
    }
  });
});
