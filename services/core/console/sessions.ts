import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StateTable } from '../state/table.ts';

/** A signed-in console session as the server keeps it (never the session id itself). */
export interface ConsoleSession {
  /** Admin token name: the audit actor. */
  actor: string;
  /** Synchronizer token every state-changing form must carry. */
  csrf: string;
  /** Epoch ms of sign-in. */
  createdAt: number;
  /** Epoch ms of the last request that counted as activity. */
  lastSeen: number;
}

/** Why a session is not (or no longer) valid. */
export type SessionEnd = 'missing' | 'idle' | 'expired';

/** Options for {@link createConsoleSessions}. */
export interface ConsoleSessionsOptions {
  /** The service's state table: every instance of the service sees the same sessions. */
  table: StateTable;
  /** Idle logoff, ms (CONSOLE_IDLE_TIMEOUT_SECONDS). */
  idleMs: number;
  /** Absolute lifetime, ms (CONSOLE_SESSION_MAX_SECONDS). */
  maxMs: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** Console sessions in the state table, keyed by a hash of the session id. */
export interface ConsoleSessions {
  /** Starts a session for `actor`; returns the id for the cookie (shown nowhere else) and the session. */
  create(actor: string): Promise<{ id: string; session: ConsoleSession }>;
  /** The session for `id` when still valid; `extend` records activity (idle clock restarts). */
  get(id: string | undefined, extend: boolean): Promise<{ session: ConsoleSession } | { ended: SessionEnd; actor?: string }>;
  /** Ends the session (sign-out); a no-op when there is none. */
  end(id: string): Promise<void>;
}

/** A fresh random token (session id, CSRF token): 256 bits, base64url. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison of two tokens (false when either is missing). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

const keyOf = (id: string): string => `console#${createHash('sha256').update(id).digest('hex')}`;

/**
 * Creates the session store. Sessions live in the service's DynamoDB state table (item
 * `console#<sha256 of the id>`, TTL at the absolute expiry), so a load balancer may send an
 * admin's requests to any instance; a stolen table item is not a usable cookie. An ended session
 * is marked `ended` (the service's table role has no DeleteItem on the interface) and expires by TTL.
 */
export function createConsoleSessions(options: ConsoleSessionsOptions): ConsoleSessions {
  const now = options.now ?? Date.now;
  const { table, idleMs, maxMs } = options;
  return {
    async create(actor) {
      const id = randomToken();
      const t = now();
      const session: ConsoleSession = { actor, csrf: randomToken(), createdAt: t, lastSeen: t };
      await table.put({ pk: keyOf(id), ...session, ttl: Math.ceil((t + maxMs) / 1000) });
      return { id, session };
    },
    async get(id, extend) {
      if (!id || id.length > 128) return { ended: 'missing' };
      const pk = keyOf(id);
      const item = await table.get(pk);
      if (!item || item.ended !== undefined || typeof item.actor !== 'string' || typeof item.csrf !== 'string') return { ended: 'missing' };
      const session: ConsoleSession = { actor: item.actor, csrf: item.csrf, createdAt: Number(item.createdAt), lastSeen: Number(item.lastSeen) };
      const t = now();
      const ended: SessionEnd | undefined = t - session.createdAt >= maxMs ? 'expired' : t - session.lastSeen >= idleMs ? 'idle' : undefined;
      if (ended) {
        // Marked, not deleted (the table's TTL removes it): only the instance that marks it reports the end, once.
        const marked = await table.update(pk, { update: 'SET ended = :why', condition: 'attribute_exists(pk) AND attribute_not_exists(ended)', values: { ':why': ended } });
        return marked ? { ended, actor: session.actor } : { ended: 'missing' };
      }
      if (extend) {
        // Only while still within the idle window as stored: two instances racing cannot revive an idle session.
        const updated = await table.update(pk, {
          update: 'SET lastSeen = :t',
          condition: 'attribute_exists(pk) AND attribute_not_exists(ended) AND lastSeen > :idleBefore',
          values: { ':t': t, ':idleBefore': t - idleMs },
        });
        if (!updated) return { ended: 'missing' };
        session.lastSeen = t;
      }
      return { session };
    },
    async end(id) {
      if (id && id.length <= 128) await table.update(keyOf(id), { update: 'SET ended = :why', condition: 'attribute_exists(pk)', values: { ':why': 'sign-out' } });
    },
  };
}
