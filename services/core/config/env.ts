import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { defineErrors } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** The configuration's one code (docs/errors.md, "Relay"): the service does not start. */
export const CONFIG_ERRORS = defineErrors({
  CR_CONFIG_INVALID: { title: 'Configuration invalid', description: 'An environment variable is missing or invalid; the message names it and what was expected.' },
} as const);

/** Raised when configuration is missing or invalid; the message names the variable. */
export class ConfigError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super('CR_CONFIG_INVALID', message, fromCatalogue(CONFIG_ERRORS.CR_CONFIG_INVALID, { cause }));
    this.name = 'ConfigError';
  }
}

/**
 * Resolves `NAME_FILE` secrets: for each name in `secrets` whose `NAME_FILE` is set, reads
 * the file and returns its content as `NAME` (one trailing newline trimmed). Setting both
 * `NAME` and `NAME_FILE` is an error. Only the listed names are indirected: a variable that
 * merely ends in `_FILE` (AUDIT_FILE, PARTNERS_FILE) is a path, not a secret.
 */
export function resolveFileSecrets(env: Record<string, string | undefined>, secrets: readonly string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const base of secrets) {
    const name = `${base}_FILE`;
    const path = env[name];
    if (path === undefined || path === '') continue;
    if (env[base] !== undefined && env[base] !== '') {
      throw new ConfigError(`${base} and ${name} are both set; set only one`);
    }
    try {
      out[base] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${name}: cannot read secret file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
    }
  }
  return out;
}

/**
 * Validates `env` against a zod object schema whose keys are variable names (after reading
 * the `secrets` given as `NAME_FILE`), and returns a frozen typed object. The first failure names the variable and what was expected.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: Record<string, string | undefined>, secrets: readonly string[] = []): Readonly<z.infer<S>> {
  const resolved = resolveFileSecrets(env, secrets);
  const result = schema.safeParse(resolved);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = issue.path.join('.') || '(environment)';
    throw new ConfigError(`${name}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}

/** True for an IPv4/IPv6 address or a CIDR block such as `203.0.113.0/24` or `2001:db8::/32`. */
export function isIpOrCidr(value: string): boolean {
  const [address, bits, extra] = value.split('/');
  if (extra !== undefined || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

/**
 * `TRUST_PROXY`: `false` (or unset) trusts no proxy; otherwise a comma-separated list of the
 * proxies' addresses or CIDR blocks. `true` is refused: it would trust every hop, so a client
 * could name any address in X-Forwarded-For.
 */
const trustProxy = () =>
  z
    .string()
    .optional()
    .transform((v, ctx): readonly string[] => {
      const value = (v ?? '').trim();
      if (['', 'false', '0', 'no'].includes(value.toLowerCase())) return [];
      if (['true', '1', 'yes'].includes(value.toLowerCase())) {
        ctx.addIssue({
          code: 'custom',
          message: '"true" would trust X-Forwarded-For from every hop (any client could claim any address); list the proxies instead, e.g. TRUST_PROXY=10.0.0.0/8,127.0.0.1, or false',
        });
        return z.NEVER;
      }
      const entries = value.split(',').map((e) => e.trim());
      const bad = entries.find((e) => !isIpOrCidr(e));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `expected false or a comma-separated list of proxy addresses or CIDR blocks like 10.0.0.0/8,127.0.0.1; "${bad}" is neither` });
        return z.NEVER;
      }
      return Object.freeze(entries);
    });

/** zod helpers for common variable shapes. */
export const envVar = {
  /** A boolean given as true/false/1/0/yes/no. */
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
      .optional()
      .transform((v) => (v === undefined || v === '' ? fallback : ['true', '1', 'yes'].includes(v))),
  /** An integer within [min, max]. */
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined || v === '') return fallback;
        const n = Number(v);
        if (!Number.isInteger(n) || n < min || n > max) {
          ctx.addIssue({ code: 'custom', message: `expected an integer from ${min} to ${max}, got "${v}"` });
          return z.NEVER;
        }
        return n;
      }),
  /** Trusted proxy addresses/CIDR blocks (`false` = none; `true` refused): see {@link trustProxy}. */
  trustProxy,
  /** A URL (http or https). */
  url: () => z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
};
