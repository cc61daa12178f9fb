import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AuditSink } from '../../core/audit/types.ts';
import { createAuthFailureLimiter, type AuthFailureLimiter } from '../../core/http/authFailures.ts';
import type { Idempotency } from '../../core/relay/idempotency.ts';
import { MAX_PAYLOAD_BYTES, type Outbound } from '../../core/relay/outbound.ts';
import type { EmergencySwitch } from '../../core/runtime/emergency.ts';
import type { InterfaceConfig } from '../config.ts';
import { startMllpListener, type MllpListener } from '../mllp/listener.ts';
import { createMllpIntake, loadMllpPartners } from './mllpIntake.ts';

/** What the MLLP intake needs from the service (the same pieces HTTP intake uses). */
export interface MllpIntakeDeps {
  outbound: Outbound;
  idempotency: Idempotency;
  audit: AuditSink;
  emergency: EmergencySwitch;
  logger: Logger;
  /**
   * The service's failed-authentication limiter (the runtime's, shared with HTTP). Without it
   * the MLLP intake keeps one of its own (AUTH_FAILURE_LIMIT, AUTH_FAILURE_WINDOW_SECONDS), closed with the listener.
   */
  authFailures?: AuthFailureLimiter | undefined;
}

/** The running MLLP intake: its listener and a reload of the partners file. */
export interface MllpIntakeServer {
  /** The listener (its port). */
  listener: MllpListener;
  /** Re-reads the MLLP partners (SIGHUP). */
  reload(): void;
}

/** Starts the partner MLLP listener from the interface configuration (MLLP_INTAKE_PORT set). */
export async function startMllpIntake(config: InterfaceConfig, deps: MllpIntakeDeps): Promise<MllpIntakeServer> {
  const partners = loadMllpPartners(config.PARTNERS_FILE, config.MLLP_INTAKE_PLAIN || !config.TLS_CERT_FILE);
  const authFailures =
    deps.authFailures ?? createAuthFailureLimiter({ audit: deps.audit, limit: config.AUTH_FAILURE_LIMIT, windowMs: config.AUTH_FAILURE_WINDOW_SECONDS * 1000, logger: deps.logger });
  const own = deps.authFailures ? undefined : authFailures;
  const onMessage = createMllpIntake({ ...deps, authFailures, partners, hmacKey: config.HMAC_KEY });
  const tls =
    config.TLS_CERT_FILE && config.TLS_KEY_FILE && !config.MLLP_INTAKE_PLAIN
      ? {
          cert: readFileSync(config.TLS_CERT_FILE),
          key: readFileSync(config.TLS_KEY_FILE),
          ciphers: config.TLS_CIPHERS,
          ...(config.MLLP_INTAKE_CLIENT_CA_FILE ? { ca: readFileSync(config.MLLP_INTAKE_CLIENT_CA_FILE) } : {}),
        }
      : undefined;
  const listener = await startMllpListener({
    port: config.MLLP_INTAKE_PORT ?? 0,
    host: config.MLLP_INTAKE_HOST ?? config.HOST,
    ...(tls ? { tls } : {}),
    maxFrameBytes: config.MLLP_INTAKE_MAX_FRAME_BYTES || config.INTAKE_MAX_BODY_BYTES || MAX_PAYLOAD_BYTES,
    frameTimeoutMs: config.MLLP_INTAKE_FRAME_TIMEOUT_MS,
    idleTimeoutMs: config.MLLP_INTAKE_IDLE_TIMEOUT_MS,
    maxConnections: config.MLLP_INTAKE_MAX_CONNECTIONS,
    maxConnectionsPerAddress: config.MLLP_INTAKE_MAX_CONNECTIONS_PER_ADDRESS,
    onMessage,
    logger: deps.logger,
  });
  if (!own) return { listener, reload: partners.reload };
  // The limiter's pending aggregated lines are written when the listener closes.
  const withLimiter: MllpListener = {
    port: listener.port,
    async close(deadlineMs) {
      try {
        await listener.close(deadlineMs);
      } finally {
        await own.close();
      }
    },
  };
  return { listener: withLimiter, reload: partners.reload };
}
