import { z } from 'zod';
import { envVar } from '../../core/config/env.ts';

/** The interface service's MLLP variables (EMR delivery and partner intake); spread into its schema. */
export const mllpEnvShape = {
  /** MLLP destination of HL7 v2 chart updates: `mllps://host:port` (TLS) or `mllp://host:port` (plain, with EMR_MLLP_PLAIN). */
  EMR_MLLP_URL: z
    .string()
    .regex(/^mllps?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected mllps://host:port (or mllp://host:port with EMR_MLLP_PLAIN=true)')
    .optional(),
  /** The operator's explicit consent to plain TCP for an `mllp://` destination. */
  EMR_MLLP_PLAIN: envVar.bool(false),
  /** Pinned CA (PEM) the EMR's MLLP certificate must chain to; required for `mllps://`. */
  EMR_MLLP_CA_FILE: z.string().min(1).optional(),
  /** Client certificate (PEM) presented to the EMR. */
  EMR_MLLP_CERT_FILE: z.string().min(1).optional(),
  /** Client private key (PEM) for EMR_MLLP_CERT_FILE. */
  EMR_MLLP_KEY_FILE: z.string().min(1).optional(),
  /** Name checked against the EMR's certificate (defaults to the URL's host). */
  EMR_MLLP_SERVERNAME: z.string().min(1).optional(),
  /** Milliseconds to wait for the EMR's ACK. */
  EMR_MLLP_ACK_TIMEOUT_MS: envVar.int(30_000, 100, 600_000),
  /** Attempts before a chart update answered AE/CE is dead-lettered with the reason. */
  EMR_MLLP_MAX_ATTEMPTS: envVar.int(5, 1, 1000),
  /** Persistent connections to the EMR, one message in flight on each; 1 keeps the order. */
  EMR_MLLP_CONNECTIONS: envVar.int(1, 1, 16),
  /** Port of the partner MLLP listener; no listener when unset. */
  MLLP_INTAKE_PORT: z.string().regex(/^\d{1,5}$/, 'expected a port number').transform(Number).refine((n) => n <= 65535, 'expected a port number up to 65535').optional(),
  /** Address of the MLLP listener (defaults to HOST). */
  MLLP_INTAKE_HOST: z.string().min(1).optional(),
  /** The operator's explicit consent to plain TCP intake outside loopback (private links only). */
  MLLP_INTAKE_PLAIN: envVar.bool(false),
  /** CA (PEM) that partners' client certificates must chain to; without it any certificate is checked by fingerprint only. */
  MLLP_INTAKE_CLIENT_CA_FILE: z.string().min(1).optional(),
  /** Largest HL7 message read; 0 means INTAKE_MAX_BODY_BYTES (or the most one SQS message holds). */
  MLLP_INTAKE_MAX_FRAME_BYTES: envVar.int(0, 0, 1_048_576),
  /** Milliseconds a started frame may take to arrive in full (slow senders); on TLS, also the handshake's limit. */
  MLLP_INTAKE_FRAME_TIMEOUT_MS: envVar.int(30_000, 100, 600_000),
  /** Milliseconds a connection may go without starting a frame, after connecting or its last ACK (CR/LF filler does not count). */
  MLLP_INTAKE_IDLE_TIMEOUT_MS: envVar.int(300_000, 1000, 86_400_000),
  /** Partner connections open at once. */
  MLLP_INTAKE_MAX_CONNECTIONS: envVar.int(100, 1, 10_000),
  /** Partner connections open at once from one source address (one peer cannot take every slot). */
  MLLP_INTAKE_MAX_CONNECTIONS_PER_ADDRESS: envVar.int(20, 1, 10_000),
};

type MllpCfg = z.infer<z.ZodObject<typeof mllpEnvShape>> & { HOST: string; TLS_CERT_FILE?: string | undefined };

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** True when `host` is a loopback address (where the MLLP listener may run without TLS). */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

/** Cross-variable checks of the MLLP settings; returns the first problem, naming the variable. */
export function checkMllp(cfg: MllpCfg): string | undefined {
  if (cfg.EMR_MLLP_URL?.startsWith('mllp://') && !cfg.EMR_MLLP_PLAIN) return 'EMR_MLLP_URL: mllp:// is plain TCP; use mllps:// or set EMR_MLLP_PLAIN=true to allow it';
  if (cfg.EMR_MLLP_URL?.startsWith('mllps://') && !cfg.EMR_MLLP_CA_FILE) return 'EMR_MLLP_CA_FILE: required for mllps:// (the CA the EMR certificate must chain to)';
  if (Boolean(cfg.EMR_MLLP_CERT_FILE) !== Boolean(cfg.EMR_MLLP_KEY_FILE)) return 'EMR_MLLP_CERT_FILE: EMR_MLLP_CERT_FILE and EMR_MLLP_KEY_FILE must be set together';
  if (cfg.MLLP_INTAKE_PORT !== undefined && !cfg.TLS_CERT_FILE && !cfg.MLLP_INTAKE_PLAIN && !isLoopback(cfg.MLLP_INTAKE_HOST ?? cfg.HOST)) {
    return 'MLLP_INTAKE_PLAIN: the MLLP listener is not on loopback and has no TLS certificate; set TLS_CERT_FILE/TLS_KEY_FILE, or MLLP_INTAKE_PLAIN=true for a private link';
  }
  return undefined;
}

/** Host and port of an `mllp(s)://host:port` URL. */
export function mllpAddress(url: string): { host: string; port: number; tls: boolean } {
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port), tls: parsed.protocol === 'mllps:' };
}

/** The MLLP delivery settings from the interface configuration (files read here, at start). */
export function mllpDestinationOf(cfg: MllpCfg & { EMR_MLLP_URL: string; EMR_TIMEOUT_MS: number }, read: (file: string) => Buffer): {
  host: string;
  port: number;
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer; servername?: string };
  connectTimeoutMs: number;
  ackTimeoutMs: number;
  maxAttempts: number;
  connections: number;
} {
  const { host, port, tls } = mllpAddress(cfg.EMR_MLLP_URL);
  return {
    host,
    port,
    ...(tls
      ? {
          tls: {
            ca: read(cfg.EMR_MLLP_CA_FILE!),
            ...(cfg.EMR_MLLP_CERT_FILE && cfg.EMR_MLLP_KEY_FILE ? { cert: read(cfg.EMR_MLLP_CERT_FILE), key: read(cfg.EMR_MLLP_KEY_FILE) } : {}),
            ...(cfg.EMR_MLLP_SERVERNAME ? { servername: cfg.EMR_MLLP_SERVERNAME } : {}),
          },
        }
      : {}),
    connectTimeoutMs: cfg.EMR_TIMEOUT_MS,
    ackTimeoutMs: cfg.EMR_MLLP_ACK_TIMEOUT_MS,
    maxAttempts: cfg.EMR_MLLP_MAX_ATTEMPTS,
    connections: cfg.EMR_MLLP_CONNECTIONS,
  };
}
