import { BlockList, isIP, isIPv4 } from 'node:net';
import { z } from 'zod';

/** True for a host that can only reach this machine: `localhost`, 127.0.0.0/8, `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || (isIPv4(hostname) && hostname.startsWith('127.'));
}

/**
 * Addresses a partner's callback must not reach unless PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS is set: this
 * machine and its neighbours (loopback, private, carrier-grade NAT, link-local with the cloud metadata
 * service, unique local), and addresses no public host has (unspecified, multicast, reserved). IPv6 forms
 * of IPv4 addresses (mapped, NAT64) are checked as the IPv4 address they carry.
 */
const INTERNAL = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) INTERNAL.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address an IPv6 address carries (`::ffff:a.b.c.d`, `64:ff9b::a.b.c.d`), if it carries one. */
function embeddedIPv4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True when `address` (an IP address, IPv6 without brackets) is one a callback may not reach without PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return INTERNAL.check(address, 'ipv4');
  if (family !== 6) return false;
  const v4 = embeddedIPv4(address);
  return v4 !== undefined ? INTERNAL.check(v4, 'ipv4') : INTERNAL.check(address, 'ipv6');
}

/** The URL hostname as an address (IPv6 without its brackets), or undefined when it is a name. */
function literalAddress(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) ? bare : undefined;
}

/**
 * Why `raw` cannot be a partner callback URL, or undefined when it can: https (or plain http to
 * a loopback host, which the service allows only with PARTNER_CALLBACK_ALLOW_INSECURE), no
 * user name or password in it (the signature authenticates the relay; credentials in a URL end
 * up in logs and proxies), no fragment; an https host written as an internal address
 * ({@link isInternalAddress}, `localhost` included) only with `allowPrivate`
 * (PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS). A name is checked on each connection (post.ts).
 */
export function callbackUrlProblem(raw: string, options: { allowInsecure: boolean; allowPrivate?: boolean }): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'expected an absolute https URL';
  }
  if (url.username !== '' || url.password !== '') return 'expected no user name or password in the URL (the webhook signature authenticates the relay)';
  if (url.hash !== '') return 'expected no #fragment in the URL';
  if (url.protocol === 'https:') {
    const address = url.hostname === 'localhost' ? '127.0.0.1' : literalAddress(url.hostname);
    if (options.allowPrivate !== true && address !== undefined && isInternalAddress(address)) {
      return `${url.hostname} is a loopback, private, link-local or reserved address: a partner reached on a private network needs PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS=true`;
    }
    return undefined;
  }
  if (url.protocol !== 'http:') return `expected an https URL, got ${url.protocol}`;
  if (!isLoopbackHost(url.hostname)) return `expected an https URL (plain http only to a loopback host), got http://${url.hostname}`;
  if (!options.allowInsecure) return 'plain http to a loopback host needs PARTNER_CALLBACK_ALLOW_INSECURE=true (local development only)';
  return undefined;
}

/**
 * A partner's status callback as the partners file gives it: where to POST, and the file that
 * holds its signing secrets (`whsec_…`, one per line; absolute, or relative to the partners
 * file's folder). The secrets themselves never appear in the partners file.
 */
export const callbackEntrySchema = z.strictObject({
  /** The partner's HTTPS endpoint for status callbacks. */
  url: z
    .string()
    .max(2048, 'expected a URL of at most 2048 characters')
    // The development and private-network switches are checked when the service loads the file (targets.ts).
    .superRefine((raw, ctx) => {
      const problem = callbackUrlProblem(raw, { allowInsecure: true, allowPrivate: true });
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  /** The secret file: one or more Standard Webhooks secrets (`whsec_` + base64), one per line; each signs every callback. */
  secretFile: z.string().min(1, 'expected the path of the callback secret file'),
});

/** A partner's callback entry, validated. */
export type CallbackEntry = z.infer<typeof callbackEntrySchema>;
