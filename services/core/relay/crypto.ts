import type { Envelope } from '../envelope/envelope.ts';
import { open } from '../envelope/open.ts';
import { seal } from '../envelope/seal.ts';
import type { ServiceKeys } from '../keys/load.ts';
import type { SqsAttributes } from '../transport/attributes.ts';

/** A sealed message ready for SQS: the armored body and the three wire attributes. */
export interface SealedMessage {
  /** ASCII-armored OpenPGP message. */
  body: string;
  /** `cr-version`, `cr-envelope-id`, `cr-signer`: nothing else. */
  attributes: SqsAttributes;
}

/** Per-message checks when opening: the logical queue it came from and the clock. */
export interface OpenCheck {
  /** The logical queue the message was received on. */
  queue: string;
  /** Now, for the sentAt checks (tests). */
  now?: Date;
}

/**
 * The crypto a service needs, behind one interface so the hot path can move to a
 * worker pool (bench/, issue "Performance") without touching the relay code.
 */
export interface RelayCrypto {
  /** Signs with the own current key and encrypts to the peer's newest pinned key. */
  seal(envelope: Envelope): Promise<SealedMessage>;
  /** Decrypts, verifies against pinned peers and checks the envelope; throws EnvelopeError. */
  open(armored: string, check: OpenCheck): Promise<Envelope>;
  /** Frees resources (worker threads); a no-op in-thread. */
  close(): Promise<void>;
}

/** Limits applied when opening. */
export interface OpenLimits {
  /** This service's name: envelopes must be addressed `to` it. */
  self: string;
  /** Allowed clock skew into the future, ms. */
  maxSkewMs: number;
  /** Oldest envelope accepted, ms. */
  maxAgeMs: number;
}

/** RelayCrypto on the calling thread, with keys already loaded. */
export function localCrypto(keys: ServiceKeys, limits: OpenLimits): RelayCrypto {
  return {
    seal: (envelope) => seal(envelope, keys.own, keys.peers),
    open: (armored, check) =>
      open(armored, {
        own: keys.own,
        peers: keys.peers,
        self: limits.self,
        queue: check.queue,
        maxSkewMs: limits.maxSkewMs,
        maxAgeMs: limits.maxAgeMs,
        ...(check.now ? { now: check.now } : {}),
      }),
    close: async () => {},
  };
}
