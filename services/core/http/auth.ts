import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';
import type { AuditSink } from '../audit/types.ts';
import type { AuthFailureLimiter } from './authFailures.ts';
import { HTTP_SETUP_ERRORS, httpErrors } from './errors.ts';

/** Who made an authenticated request: the token's name and roles. */
export interface Principal {
  /** Token name from the tokens file (a partner id, a client name); never the token. */
  name: string;
  /** Roles granted to the token. */
  roles: readonly string[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Role(s) a caller needs (any one of them); every route declares `role` or `public: true`. */
    role?: string | readonly string[];
    /** The route needs no bearer token (health, metrics, signed webhooks). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** The authenticated caller; null on public routes. */
    principal: Principal | null;
  }
}

/** sha256 hex of a bearer token: what the tokens file stores (`care-relay` tooling prints it). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** One entry of a tokens file; services may extend it (partners add content types, IP lists...). */
export const tokenEntrySchema = z.object({
  /** Name of the holder, used as the audit actor. */
  name: z.string().min(1),
  /** sha256 hex of the token. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex characters').transform((s) => s.toLowerCase()),
  /** Roles granted (empty when omitted). */
  roles: z.array(z.string().min(1)).default([]),
});

/** A parsed tokens file entry. */
export type TokenEntry = z.infer<typeof tokenEntrySchema>;

/** Raised when a tokens file cannot be read or is invalid; names the file and the first problem. */
export class TokenFileError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super('CR_AUTH_TOKENS_FILE_INVALID', message, fromCatalogue(HTTP_SETUP_ERRORS.CR_AUTH_TOKENS_FILE_INVALID, { cause }));
    this.name = 'TokenFileError';
  }
}

/** Options for {@link createTokenStore}. */
export interface TokenStoreOptions<E extends TokenEntry> {
  /** Path of the JSON tokens file `{ "tokens": [ { name, sha256, roles? , ... } ] }`. */
  file: string;
  /** Schema of one entry, extending {@link tokenEntrySchema}; defaults to it. */
  entrySchema?: z.ZodType<E>;
}

/** Hashed bearer tokens, looked up in constant time per entry; reloadable. */
export interface TokenStore<E extends TokenEntry = TokenEntry> {
  /** The entry whose hash matches `token`, or undefined. Compares against every entry. */
  lookup(token: string): E | undefined;
  /** The entry with this name, for services that need its extra fields. */
  byName(name: string): E | undefined;
  /** Re-reads the file; on error throws TokenFileError and keeps the previous tokens. */
  reload(): void;
  /**
   * Reads and validates the file now and returns the function that swaps it in; throws
   * TokenFileError (changing nothing) when it is invalid. Lets a caller check several
   * files before applying any of them.
   */
  prepare(): () => void;
  /** Number of tokens loaded. */
  readonly size: number;
}

/** Reads and validates a tokens file. */
export function loadTokenFile<E extends TokenEntry>(file: string, entrySchema?: z.ZodType<E>): E[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = err instanceof SyntaxError ? 'not valid JSON' : `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    throw new TokenFileError(`tokens file ${file}: ${why}`, err);
  }
  const schema = z.object({ tokens: z.array(entrySchema ?? tokenEntrySchema) });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TokenFileError(`tokens file ${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const entries = parsed.data.tokens as E[];
  const names = new Set<string>();
  const hashes = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (names.has(e.name)) throw new TokenFileError(`tokens file ${file}: tokens.${i}.name: duplicate name "${e.name}"`);
    if (hashes.has(e.sha256)) throw new TokenFileError(`tokens file ${file}: tokens.${i}.sha256: duplicate token hash`);
    names.add(e.name);
    hashes.add(e.sha256);
  }
  return entries;
}

/** Loads a tokens file into a store (throws TokenFileError at start if it is invalid). */
export function createTokenStore<E extends TokenEntry = TokenEntry>(options: TokenStoreOptions<E>): TokenStore<E> {
  let entries: { entry: E; digest: Buffer }[] = [];
  const prepare = (): (() => void) => {
    const next = loadTokenFile(options.file, options.entrySchema).map((entry) => ({ entry, digest: Buffer.from(entry.sha256, 'hex') }));
    return () => {
      entries = next;
    };
  };
  const load = (): void => prepare()();
  load();
  return {
    lookup(token) {
      const digest = createHash('sha256').update(token, 'utf8').digest();
      let found: E | undefined;
      // No early exit: the time taken does not depend on which entry (if any) matched.
      for (const e of entries) {
        if (timingSafeEqual(e.digest, digest) && found === undefined) found = e.entry;
      }
      return found;
    },
    byName: (name) => entries.find((e) => e.entry.name === name)?.entry,
    reload: load,
    prepare,
    get size() {
      return entries.length;
    },
  };
}

/** Options for {@link authPlugin}. */
export interface AuthPluginOptions {
  /** The bearer tokens (reload it on SIGHUP or file change). */
  tokens: TokenStore<TokenEntry>;
  /** Where each authentication decision is recorded. */
  audit: AuditSink;
  /** Limits and aggregates failed authentications per source (429 past the limit); each failure is one line when absent. */
  failures?: AuthFailureLimiter | undefined;
}

function rolesOf(config: { role?: string | readonly string[] }): readonly string[] {
  return config.role === undefined ? [] : typeof config.role === 'string' ? [config.role] : config.role;
}

/** The bearer token of a request, or undefined when there is no `Authorization: Bearer` header. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match?.[1];
}

/**
 * Bearer-token authentication and role checks for every route registered after it:
 * each route must declare `config: { role }` (any of the listed roles grants access) or
 * `config: { public: true }`, else registration fails. Runs on `onRequest`, before the body
 * is read. 401 for a missing or unknown token, 403 for a missing role; every decision is
 * audited (`auth.success`, `auth.failure`, `auth.forbidden`) with the token name or
 * `anonymous` and the source IP; with `failures`, failed ones are aggregated per source and a
 * source past the limit gets 429. Sets `request.principal`.
 */
export const authPlugin: FastifyPluginAsync<AuthPluginOptions> = fp(
  async (app: FastifyInstance, options: AuthPluginOptions) => {
    const { tokens, audit, failures } = options;
    app.decorateRequest('principal', null);

    app.addHook('onRoute', (route: RouteOptions) => {
      const config = (route.config ?? {}) as { role?: string | readonly string[]; public?: boolean };
      if (config.public === true) return;
      if (rolesOf(config).length === 0) {
        const method = Array.isArray(route.method) ? route.method.join(',') : route.method;
        throw new Error(`route ${method} ${route.url} declares no role: set config.role, or config.public = true`);
      }
    });

    app.addHook('onRequest', async (request) => {
      const config = request.routeOptions.config as { role?: string | readonly string[]; public?: boolean } | undefined;
      // No route config means the not-found handler: nothing to protect.
      if (config === undefined || config.public === true || request.routeOptions.url === undefined) return;
      const required = rolesOf(config);
      const resourceId = `${request.method} ${request.routeOptions.url}`;
      const base = { resourceType: 'route', resourceId, sourceIp: request.ip } as const;
      // A source that failed too often in its window is refused before its token is even looked at.
      const retryAfter = failures?.refuse(request.ip) ?? 0;
      if (retryAfter > 0) throw httpErrors.rateLimited(retryAfter);
      const token = bearerToken(request);
      const entry = token === undefined ? undefined : tokens.lookup(token);
      if (entry === undefined) {
        const reason = token === undefined ? 'missing' : 'invalid';
        if (failures) await failures.fail(request.ip, { actor: 'anonymous', resourceType: base.resourceType, resourceId, reason });
        else await audit.record({ ...base, action: 'auth.failure', actor: 'anonymous', outcome: 'failure', details: { reason } });
        throw token === undefined ? httpErrors.authMissing() : httpErrors.authInvalid();
      }
      if (required.length > 0 && !required.some((r) => entry.roles.includes(r))) {
        await audit.record({ ...base, action: 'auth.forbidden', actor: entry.name, outcome: 'failure', details: { required: required.join(',') } });
        throw httpErrors.forbidden();
      }
      await audit.record({ ...base, action: 'auth.success', actor: entry.name, outcome: 'success' });
      request.principal = { name: entry.name, roles: entry.roles };
    });
  },
  { name: 'care-relay-auth', fastify: '5.x' },
);
