import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { isIpOrCidr } from '../../core/config/env.ts';
import { tokenEntrySchema } from '../../core/http/auth.ts';
import { ACCEPTED_MEDIA_TYPES, canonicalMediaType } from '../../core/relay/contentTypes.ts';
import { callbackEntrySchema } from '../callbacks/target.ts';

const cidr = z.string().refine(isIpOrCidr, 'expected an IP address or CIDR block like 203.0.113.0/24');

/** How a partner is recognised on the MLLP listener: its client certificate, or (plain TCP) its source CIDR plus MSH-4. */
export const mllpIdentitySchema = z
  .object({
    /** SHA-256 fingerprint of the partner's client certificate (hex, colons optional). */
    clientCertSha256: z
      .string()
      .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'expected a SHA-256 certificate fingerprint (64 hex digits, colons optional)')
      .transform((s) => s.replaceAll(':', '').toUpperCase())
      .optional(),
    /** MSH-4 sending facilities (namespace id) this partner sends as, from its allowCidrs; plain TCP on a private link. */
    sendingFacilities: z.array(z.string().min(1).max(227)).min(1).optional(),
  })
  .refine((m) => m.clientCertSha256 || m.sendingFacilities, 'expected clientCertSha256 or sendingFacilities');

/** One partner in the partners file: its hashed token plus the controls on its submissions. */
export const partnerEntrySchema = tokenEntrySchema.extend({
  /** The partner id, carried in the envelope's `partner` field. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a partner id of letters, digits, ".", "_" or "-" (at most 128)'),
  /** Roles default to `partner`: partners can only submit. */
  roles: z.array(z.literal('partner')).default(['partner']),
  /** Media types this partner may send (canonical or accepted aliases); held canonical (`text/xml` → `application/xml`), each once. */
  contentTypes: z
    .array(z.enum(ACCEPTED_MEDIA_TYPES as [string, ...string[]]))
    .min(1)
    .default(['application/fhir+json', 'application/hl7-v2', 'application/xml'])
    .transform((types) => [...new Set(types.map((t) => canonicalMediaType(t)!))]),
  /** Source addresses allowed; any when omitted. */
  allowCidrs: z.array(cidr).optional(),
  /** Submissions per minute. */
  rateLimitPerMinute: z.number().int().min(1).max(100_000).default(600),
  /** How this partner is recognised on the MLLP listener; absent means it does not use MLLP. */
  mllp: mllpIdentitySchema.optional(),
  /** Status callbacks (Standard Webhooks): the partner's HTTPS URL and its secret file; absent means none. */
  callback: callbackEntrySchema.optional(),
}).refine((p) => !p.mllp?.sendingFacilities || p.allowCidrs, {
  message: 'mllp.sendingFacilities: expected allowCidrs too (a sending facility alone does not identify a partner)',
  path: ['mllp', 'sendingFacilities'],
});

/** A partner as loaded from the partners file. */
export type PartnerEntry = z.infer<typeof partnerEntrySchema>;

const lists = new WeakMap<PartnerEntry, BlockList>();

/** True when `ip` may submit for `partner` (no allow-list means any address). */
export function partnerAllows(partner: PartnerEntry, ip: string): boolean {
  if (!partner.allowCidrs) return true;
  let list = lists.get(partner);
  if (!list) {
    list = new BlockList();
    for (const block of partner.allowCidrs) {
      const [address, bits] = block.split('/') as [string, string | undefined];
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(address, type);
      else list.addSubnet(address, Number(bits), type);
    }
    lists.set(partner, list);
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const address = mapped ? mapped[1]! : ip;
  return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}
