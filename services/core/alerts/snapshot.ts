import type { QueueRole } from '../transport/queues.ts';

/** Depth of one physical queue, from SQS's approximate counters. */
export interface QueueDepth {
  /** Logical queue (`interface-to-app`, ...). */
  queue: string;
  /** Main queue, its DLQ or its quarantine queue. */
  role: QueueRole;
  /** Messages waiting to be received. */
  visible: number;
  /** Messages received and not yet deleted. */
  inFlight: number;
  /** Messages sent with a delay that is still running. */
  delayed: number;
}

/** A key's expiry as the alerts see it. */
export interface KeyExpiry {
  /** `own` (this service's keys) or `peer` (a pinned peer key). */
  role: 'own' | 'peer';
  /** Primary-key fingerprint. */
  fingerprint: string;
  /** When it expires, epoch ms; `Infinity` when it never does. */
  expiresAt: number;
}

/**
 * What one service knows about its own health at one moment: the input of both the
 * Prometheus gauges and the built-in conditions. Only counts, names, ids and times: no PHI.
 * A field left undefined was not measured this time (e.g. SQS unreachable): the conditions
 * that depend on it keep their state instead of clearing.
 */
export interface AlertSnapshot {
  /** When it was taken, epoch ms. */
  at: number;
  /** Every queue of the service with its DLQ and quarantine queue; undefined when the poll failed. */
  queues?: QueueDepth[] | undefined;
  /** Main queues this service consumes: upper bound of the oldest waiting message's age, seconds. */
  oldestAgeSeconds?: Record<string, number> | undefined;
  /** Interface: EMR delivery is failing (no success since the first failure), and for how long. */
  emr?: { failing: boolean; seconds: number } | undefined;
  /** App: records held and the inbox's capacity. */
  inbox?: { size: number; capacity: number } | undefined;
  /** Emergency mode is on. */
  emergency: boolean;
  /** Seconds since the last failed audit write (Infinity when none failed). */
  auditFailureAgeSeconds: number;
  /** Own and pinned peer keys. */
  keys: KeyExpiry[];
  /** Every readiness check passes now. */
  ready: boolean;
  /** Seconds the service has been continuously not ready (0 when ready). */
  notReadySeconds: number;
}
