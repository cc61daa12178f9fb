import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RelayError } from '../errors/relayError.ts';

/** Raised when configuration is missing or invalid; the message names the variable. */
export class ConfigError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super('CR_CONFIG_INVALID', message, { cause });
    this.name = 'ConfigError';
  }
}

/**
 * Resolves `NAME_FILE` secrets: for every `X_FILE` set in `env`, reads the file and
 * returns it as `X` (trailing newline trimmed). Setting both `X` and `X_FILE` is an error.
 */
export function resolveFileSecrets(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const [name, path] of Object.entries(env)) {
    if (!name.endsWith('_FILE') || path === undefined || path === '') continue;
    const base = name.slice(0, -'_FILE'.length);
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
 * Validates `env` against a zod object schema whose keys are variable names, and
 * returns a frozen typed object. The first failure names the variable and what was expected.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: Record<string, string | undefined>): Readonly<z.infer<S>> {
  const resolved = resolveFileSecrets(env);
  const result = schema.safeParse(resolved);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = issue.path.join('.') || '(environment)';
    throw new ConfigError(`${name}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}

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
  /** A URL (http or https). */
  url: () => z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
};
