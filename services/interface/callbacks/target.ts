import { isIPv4 } from 'node:net';
import { z } from 'zod';

/** True for a host that can only reach this machine: `localhost`, 127.0.0.0/8, `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || (isIPv4(hostname) && hostname.startsWith('127.'));
}

/**
 * Why `raw` cannot be a partner callback URL, or undefined when it can: https (or plain http to
 * a loopback host, which the service allows only with PARTNER_CALLBACK_ALLOW_INSECURE), no
 * user name or password in it (the signature authenticates the relay; credentials in a URL end
 * up in logs and proxies), no fragment.
 */
export function callbackUrlProblem(raw: string, options: { allowInsecure: boolean }): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'expected an absolute https URL';
  }
  if (url.username !== '' || url.password !== '') return 'expected no user name or password in the URL (the webhook signature authenticates the relay)';
  if (url.hash !== '') return 'expected no #fragment in the URL';
  if (url.protocol === 'https:') return undefined;
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
    // The development switch is checked when the service loads the file (targets.ts).
    .superRefine((raw, ctx) => {
      const problem = callbackUrlProblem(raw, { allowInsecure: true });
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  /** The secret file: one or more Standard Webhooks secrets (`whsec_` + base64), one per line; each signs every callback. */
  secretFile: z.string().min(1, 'expected the path of the callback secret file'),
});

/** A partner's callback entry, validated. */
export type CallbackEntry = z.infer<typeof callbackEntrySchema>;
