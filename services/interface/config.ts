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
  /** Allow plain http partner callback URLs to a loopback host (local development only). */
  PARTNER_CALLBACK_ALLOW_INSECURE: envVar.bool(false),
  /** Partner callbacks may reach loopback, private, link-local or reserved addresses (partners on a private network). */
  PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS: envVar.bool(false),
  /** Milliseconds before a partner callback attempt times out. */
  PARTNER_CALLBACK_TIMEOUT_MS: envVar.int(10_000, 100, 120_000),
  /** Attempts of one partner callback before it is dead-lettered (keep it at most the queues' maxReceiveCount). */
  PARTNER_CALLBACK_MAX_ATTEMPTS: envVar.int(5, 1, 1000),
  /** First retry delay of a partner callback, seconds (doubles per attempt, with jitter). */
  PARTNER_CALLBACK_BACKOFF_SECONDS: envVar.int(30, 1, 43_200),
  /** Longest retry delay of a partner callback, seconds. */
  PARTNER_CALLBACK_BACKOFF_MAX_SECONDS: envVar.int(3_600, 1, 43_200),
  /** Extra CA certificates (PEM) partner callback servers may chain to, besides the system's; optional. */
  PARTNER_CALLBACK_CA_FILE: z.string().min(1).optional(),
});

/** The interface service's configuration: validated, typed, frozen. */
export type InterfaceConfig = Readonly<z.infer<typeof interfaceEnvSchema>>;

function checkCallbacks(cfg: { PARTNER_CALLBACK_BACKOFF_SECONDS: number; PARTNER_CALLBACK_BACKOFF_MAX_SECONDS: number }): string | undefined {
  if (cfg.PARTNER_CALLBACK_BACKOFF_MAX_SECONDS < cfg.PARTNER_CALLBACK_BACKOFF_SECONDS) return 'PARTNER_CALLBACK_BACKOFF_MAX_SECONDS: expected at least PARTNER_CALLBACK_BACKOFF_SECONDS';
  return undefined;
}

/** Reads and validates the interface service's environment; throws ConfigError naming the variable. */
export function loadInterfaceConfig(env: Record<string, string | undefined> = process.env): InterfaceConfig {
  const cfg = parseEnv(interfaceEnvSchema, env, [...COMMON_SECRETS, 'EMR_AUTH_TOKEN']);
  const problem = checkCommon(cfg) ?? checkMllp(cfg) ?? checkCallbacks(cfg);
  if (problem) throw new ConfigError(problem);
  return cfg;
}
