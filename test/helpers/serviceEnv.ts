import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashToken } from '../../services/core/http/auth.ts';
import type { TestServiceKeyPair } from './keys.ts';
import type { TestSqs } from './sqs.ts';

/** Bearer tokens accepted by the files {@link writeServiceEnv} writes. */
export interface ServiceTokens {
  partner: string;
  reader: string;
  writer: string;
  messenger: string;
  admin: string;
}

/** Environment for each service, as a deployment would give it: only its own keys and secrets. */
export interface ServiceEnv {
  tokens: ServiceTokens;
  iface: Record<string, string>;
  app: Record<string, string>;
}

/**
 * Writes the partners, API and admin token files into `dir` and returns each service's
 * environment on the given SQS endpoint and queue prefix. Callers add PORT, EMR_URL and
 * anything else they need.
 */
export async function writeServiceEnv(dir: string, sqs: TestSqs, keys: TestServiceKeyPair, extra: { iface?: Record<string, string>; app?: Record<string, string> } = {}): Promise<ServiceEnv> {
  const t = (): string => randomBytes(18).toString('base64url');
  const tokens: ServiceTokens = { partner: t(), reader: t(), writer: t(), messenger: t(), admin: t() };
  await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'acme-health', sha256: hashToken(tokens.partner), rateLimitPerMinute: 100_000 }] }));
  await writeFile(
    join(dir, 'app-tokens.json'),
    JSON.stringify({
      tokens: [
        { name: 'reader', sha256: hashToken(tokens.reader), roles: ['reader'] },
        { name: 'writer', sha256: hashToken(tokens.writer), roles: ['writer'] },
        { name: 'messenger', sha256: hashToken(tokens.messenger), roles: ['messenger'] },
        { name: 'admin', sha256: hashToken(tokens.admin), roles: ['admin'] },
      ],
    }),
  );
  await writeFile(join(dir, 'admins.json'), JSON.stringify({ tokens: [{ name: 'admin', sha256: hashToken(tokens.admin), roles: ['admin'] }] }));
  const common = {
    SQS_ENDPOINT: sqs.endpoint,
    DYNAMODB_ENDPOINT: sqs.dynamodbEndpoint,
    AWS_REGION: sqs.region,
    QUEUE_PREFIX: sqs.prefix,
    ...(process.env.SQS_ENDPOINT ? {} : { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' }),
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    VISIBILITY_TIMEOUT_SECONDS: '5',
    HEARTBEAT_INTERVAL_SECONDS: '2',
    MAX_CLOCK_SKEW_SECONDS: '60',
    SHUTDOWN_DEADLINE_MS: '3000',
  };
  return {
    tokens,
    iface: {
      ...common,
      KEYS_DIR: keys.interface.dir,
      KEY_PASSPHRASE: keys.interface.passphrase,
      AUDIT_FILE: join(dir, 'interface-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      PARTNERS_FILE: join(dir, 'partners.json'),
      ADMIN_TOKENS_FILE: join(dir, 'admins.json'),
      EMR_TIMEOUT_MS: '2000',
      ...extra.iface,
    },
    app: {
      ...common,
      KEYS_DIR: keys.app.dir,
      KEY_PASSPHRASE: keys.app.passphrase,
      AUDIT_FILE: join(dir, 'app-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      APP_TOKENS_FILE: join(dir, 'app-tokens.json'),
      ...extra.app,
    },
  };
}
