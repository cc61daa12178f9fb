import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ConfigError, envVar, parseEnv } from '../core/config/env.ts';
import { COMMON_SECRETS, checkCommon, commonEnvShape } from '../core/config/common.ts';

/** The app service's environment: variable name → expected shape. */
export const appEnvSchema = z.object({
  ...commonEnvShape,
  PORT: envVar.int(8081, 0, 65535),
  /** API tokens file: hashed bearer tokens with their roles (reader, writer, messenger, admin). */
  APP_TOKENS_FILE: z.string({ error: 'required: the API tokens file (see docs/configuration.md)' }).min(1),
  /** Most decrypted records held in the inbox; when full the app stops receiving. */
  INBOX_CAPACITY: envVar.int(10_000, 1, 1_000_000),
  /** Largest chart update body accepted; unset means the most that fits one SQS message once sealed. */
  CHART_UPDATE_MAX_BODY_BYTES: envVar.int(0, 0, 1_048_576),
  /** SignalWire project id; SMS is disabled when unset. */
  SIGNALWIRE_PROJECT_ID: z.string().min(1).optional(),
  /** SignalWire API token (or SIGNALWIRE_API_TOKEN_FILE). */
  SIGNALWIRE_API_TOKEN: z.string().min(1).optional(),
  /** SignalWire space URL, e.g. https://example.signalwire.com. */
  SIGNALWIRE_SPACE_URL: envVar.url().optional(),
  /** SignalWire Signing Key that signs status callbacks (or SIGNALWIRE_SIGNING_KEY_FILE); not the API token. */
  SIGNALWIRE_SIGNING_KEY: z.string().min(1).optional(),
  /** The sending number (E.164). */
  SIGNALWIRE_FROM_NUMBER: z.string().regex(/^\+[1-9]\d{6,14}$/, 'expected an E.164 number like +15551230000').optional(),
  /** Basic Auth user the status webhook requires, when set. */
  SIGNALWIRE_WEBHOOK_USER: z.string().min(1).optional(),
  /** Basic Auth password the status webhook requires (or SIGNALWIRE_WEBHOOK_PASSWORD_FILE). */
  SIGNALWIRE_WEBHOOK_PASSWORD: z.string().min(1).optional(),
  /** `redact` blanks the body after deleting media; `delete` also deletes the message. */
  REDACTION_MODE: z.enum(['redact', 'delete']).default('redact'),
  /** Seconds after which a message still `sent` counts as final. */
  REDACTION_SENT_GRACE_SECONDS: envVar.int(3_600, 0, 604_800),
  /** Delay of the fallback redaction job enqueued at send time (SQS allows at most 900). */
  REDACTION_FALLBACK_DELAY_SECONDS: envVar.int(900, 0, 900),
  /** Seconds after sending within which a message must be redacted before it goes to the DLQ. */
  REDACTION_WINDOW_SECONDS: envVar.int(172_800, 60, 1_209_600),
  /** Allow http:// media URLs and space URL (local development with the fake only). */
  SIGNALWIRE_ALLOW_INSECURE: envVar.bool(false),
});

/** The app service's configuration: validated, typed, frozen. */
export type AppConfig = Readonly<z.infer<typeof appEnvSchema>>;

const smsVars = ['SIGNALWIRE_API_TOKEN', 'SIGNALWIRE_SPACE_URL', 'SIGNALWIRE_SIGNING_KEY', 'SIGNALWIRE_FROM_NUMBER', 'PUBLIC_BASE_URL'] as const;

/** True for a host name that can only reach this machine: localhost, 127.0.0.0/8, [::1]. */
function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || (isIPv4(hostname) && hostname.startsWith('127.'));
}

/** Reads and validates the app service's environment; throws ConfigError naming the variable. */
export function loadAppConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const cfg = parseEnv(appEnvSchema, env, [...COMMON_SECRETS, 'SIGNALWIRE_API_TOKEN', 'SIGNALWIRE_SIGNING_KEY', 'SIGNALWIRE_WEBHOOK_PASSWORD']);
  const problem = checkCommon(cfg);
  if (problem) throw new ConfigError(problem);
  // SignalWire posts message bodies, numbers and the webhook's Basic Auth password to this URL.
  if (cfg.PUBLIC_BASE_URL) {
    const url = new URL(cfg.PUBLIC_BASE_URL);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      throw new ConfigError(`PUBLIC_BASE_URL: expected an https URL (http only on a loopback host), got ${url.protocol}//${url.host}`);
    }
  }
  if (cfg.SIGNALWIRE_PROJECT_ID) {
    const missing = smsVars.find((name) => !cfg[name]);
    if (missing) throw new ConfigError(`${missing}: required when SIGNALWIRE_PROJECT_ID is set`);
  }
  if (Boolean(cfg.SIGNALWIRE_WEBHOOK_USER) !== Boolean(cfg.SIGNALWIRE_WEBHOOK_PASSWORD)) {
    throw new ConfigError('SIGNALWIRE_WEBHOOK_USER: SIGNALWIRE_WEBHOOK_USER and SIGNALWIRE_WEBHOOK_PASSWORD must be set together');
  }
  return cfg;
}
