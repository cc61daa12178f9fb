import { describe, expect, it } from 'vitest';
import { formatFor } from '../../services/core/relay/contentTypes.ts';
import { partnerEntrySchema } from '../../services/interface/intake/partners.ts';

const SHA = 'a'.repeat(64);

describe('partner content types', () => {
  it('configured aliases (text/xml, application/json+fhir, x-application/hl7-v2+er7) are canonicalised, so the partner is not refused 415 for everything', () => {
    const partner = partnerEntrySchema.parse({ name: 'xml-lab', sha256: SHA, contentTypes: ['text/xml', 'application/json+fhir', 'x-application/hl7-v2+er7'] });
    expect(partner.contentTypes).toEqual(['application/xml', 'application/fhir+json', 'application/hl7-v2']);
    // Each alias and its canonical type are accepted for this partner.
    for (const header of ['text/xml', 'application/xml; charset=utf-8', 'application/cda+xml', 'application/json+fhir', 'application/fhir+json', 'x-application/hl7-v2+er7']) {
      expect(() => formatFor(header, partner.contentTypes), header).not.toThrow();
    }
  });

  it('an alias and its canonical type given together count once; an unknown type fails naming the field', () => {
    const partner = partnerEntrySchema.parse({ name: 'xml-lab', sha256: SHA, contentTypes: ['text/xml', 'application/xml'] });
    expect(partner.contentTypes).toEqual(['application/xml']);
    expect(partnerEntrySchema.safeParse({ name: 'x', sha256: SHA, contentTypes: ['text/plain'] }).success).toBe(false);
    expect(() => formatFor('application/fhir+json', partner.contentTypes)).toThrow(expect.objectContaining({ code: 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE', status: 415 }));
  });
});
