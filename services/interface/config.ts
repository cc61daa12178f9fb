import { z } from 'zod';
import { ConfigError, envVar, parseEnv } from '../core/config/env.ts';
import { COMMON_SECRETS, checkCommon, commonEnvShape } from '../core/config/common.ts';
import { checkMllp, mllpEnvShape } from './mllp/config.ts';

/** The interface service's environment: variable name → expected shape. */
export const interfaceEnvSchema = z.object({
  ...commonEnvShape,
  PORT: envVar.int(8080, 0, 65535),
  /** Partners file: hashed bearer tokens, allowed content types, allow-lists, rate limits. */
  PARTNERS_FILE: z.string({ error: 'required: the partners file (see docs/configuration.md)' }).min(1),
  /** Admin tokens file (hashed, with roles) for the admin routes; optional. */
  ADMIN_TOKENS_FILE: z.string().min(1).optional(),
  /** The EMR interface engine's HTTP(S) endpoint that receives chart updates. */
  EMR_URL: envVar.url(),
  /** Bearer token the EMR endpoint expects (or EMR_AUTH_TOKEN_FILE); optional. */
  EMR_AUTH_TOKEN: z.string().min(1).optional(),
  /** Milliseconds before an EMR delivery attempt times out. */
  EMR_TIMEOUT_MS: envVar.int(10_000, 100, 300_000),
  /** EMR deliveries in flight at once. */
  EMR_CONCURRENCY: envVar.int(8, 1, 256),
  /** Largest partner body accepted; unset means the most that still fits one SQS message once sealed. */
  INTAKE_MAX_BODY_BYTES: envVar.int(0, 0, 1_048_576),
  ...mllpEnvShape,
});

/** The interface service's configuration: validated, typed, frozen. */
export type InterfaceConfig = Readonly<z.infer<typeof interfaceEnvSchema>>;

/** Reads and validates the interface service's environment; throws ConfigError naming the variable. */
export function loadInterfaceConfig(env: Record<string, string | undefined> = process.env): InterfaceConfig {
  const cfg = parseEnv(interfaceEnvSchema, env, [...COMMON_SECRETS, 'EMR_AUTH_TOKEN']);
  const problem = checkCommon(cfg) ?? checkMllp(cfg);
  if (problem) throw new ConfigError(problem);
  return cfg;
}
