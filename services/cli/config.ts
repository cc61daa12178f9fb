// The environment of the queue operation commands (`status`, `dlq`, `quarantine`): the only place
// they read it. The older groups read theirs in their own files.
import { userInfo } from 'node:os';
import { z } from 'zod';
import { envVar, parseEnv } from '../core/config/env.ts';

/** The variables `care-relay status|dlq|quarantine` read. */
export const opsEnvSchema = z.object({
  /** SQS endpoint (LocalStack, the emulator); unset for AWS. */
  SQS_ENDPOINT: envVar.url().optional(),
  /** DynamoDB endpoint of the state tables; unset for AWS. */
  DYNAMODB_ENDPOINT: envVar.url().optional(),
  /** AWS region. */
  AWS_REGION: z.string().min(1).default('us-east-1'),
  /** Queue-name prefix, as the services use it. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]*$/, 'expected letters, digits, - and _').default(''),
  /** FIFO queues. */
  QUEUE_FIFO: envVar.bool(false),
  /** Base URL of the running interface service (its admin status endpoint). */
  CARE_RELAY_INTERFACE_URL: envVar.url().optional(),
  /** Base URL of the running app service (its admin status endpoint: inbox fill). */
  CARE_RELAY_APP_URL: envVar.url().optional(),
  /** Admin bearer token for both services (or CARE_RELAY_ADMIN_TOKEN_FILE). */
  CARE_RELAY_ADMIN_TOKEN: z.string().min(1).optional(),
  /** Admin token of the interface when it differs (or _FILE). */
  CARE_RELAY_INTERFACE_ADMIN_TOKEN: z.string().min(1).optional(),
  /** Admin token of the app when it differs (or _FILE). */
  CARE_RELAY_APP_ADMIN_TOKEN: z.string().min(1).optional(),
  /** Default audit trail of redrive and purge (`--audit`); give the CLI its own file, never a running service's. */
  AUDIT_FILE: z.string().min(1).optional(),
  /** Present when the AWS SDK has credentials of its own (else, with an endpoint, dummy ones are used). */
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_PROFILE: z.string().optional(),
  AWS_WEB_IDENTITY_TOKEN_FILE: z.string().optional(),
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: z.string().optional(),
});

/** Secrets that may be given as NAME_FILE. */
const SECRETS = ['CARE_RELAY_ADMIN_TOKEN', 'CARE_RELAY_INTERFACE_ADMIN_TOKEN', 'CARE_RELAY_APP_ADMIN_TOKEN'] as const;

/** The parsed environment of the queue operation commands. */
export type OpsEnv = z.infer<typeof opsEnvSchema>;

/** Where a running service answers, and with which admin token. */
export interface ServiceEndpoint {
  /** Base URL. */
  url: string;
  /** Admin bearer token, when configured. */
  token: string | undefined;
}

/** The configuration of one queue operation command. */
export interface OpsConfig {
  /** The parsed variables. */
  env: OpsEnv;
  /** SDK client options for SQS and DynamoDB (endpoint, region, dummy credentials for a local endpoint). */
  aws(endpoint: string | undefined): { region: string; endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
  /** The running services' status endpoints, when configured. */
  services: { interface?: ServiceEndpoint; app?: ServiceEndpoint };
  /** The audit actor of this operator: `cli:<login name>`. */
  actor: string;
}

/** Reads the queue operation commands' configuration; a bad value throws CR_CONFIG_INVALID naming the variable. */
export function loadOpsConfig(raw: Readonly<Record<string, string | undefined>>): OpsConfig {
  const env = parseEnv(opsEnvSchema, { ...raw }, SECRETS);
  const hasCredentials = Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE || env.AWS_WEB_IDENTITY_TOKEN_FILE || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI);
  const endpointOf = (url: string | undefined, token: string | undefined): ServiceEndpoint | undefined => (url ? { url: url.replace(/\/+$/, ''), token } : undefined);
  const iface = endpointOf(env.CARE_RELAY_INTERFACE_URL, env.CARE_RELAY_INTERFACE_ADMIN_TOKEN ?? env.CARE_RELAY_ADMIN_TOKEN);
  const app = endpointOf(env.CARE_RELAY_APP_URL, env.CARE_RELAY_APP_ADMIN_TOKEN ?? env.CARE_RELAY_ADMIN_TOKEN);
  let login = 'unknown';
  try {
    login = userInfo().username.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64) || 'unknown';
  } catch {
    // No passwd entry (some containers): the actor stays `cli:unknown`.
  }
  return {
    env,
    aws: (endpoint) => ({
      region: env.AWS_REGION,
      ...(endpoint ? { endpoint } : {}),
      // Local endpoints accept any credentials; this keeps the SDK from probing for real ones.
      ...(endpoint && !hasCredentials ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
    }),
    services: { ...(iface ? { interface: iface } : {}), ...(app ? { app } : {}) },
    actor: `cli:${login}`,
  };
}
