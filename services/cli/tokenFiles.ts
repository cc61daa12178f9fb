// The three bearer-token files the services read, edited by the CLI (`care-relay tokens`,
// `care-relay deploy prepare`): a token is generated here, printed once by the caller, and
// only its sha256 is stored. Files are written whole (temporary file, then rename), mode 0600,
// and validated with the very schemas the services load them with.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import { hashToken, loadTokenFile, tokenEntrySchema, type TokenEntry } from '../core/http/auth.ts';
import { partnerEntrySchema } from '../interface/intake/partners.ts';

/** Which file a token belongs to: the interface's partners, the app's API tokens, an admin token. */
export type TokenKind = 'partner' | 'app' | 'admin';

/** Every kind, for usage lines and validation. */
export const TOKEN_KINDS: readonly TokenKind[] = ['partner', 'app', 'admin'];

/** Roles an app token may hold (the app's routes ask for one of them). */
export const APP_ROLES = ['reader', 'writer', 'messenger', 'admin'] as const;

/** File names `care-relay dev` uses under its data folder, per kind. */
export const DEV_TOKEN_FILES: Record<TokenKind, string> = { partner: 'partners.json', app: 'app-tokens.json', admin: 'admin-tokens.json' };

/** What to add: the name, and for app tokens the roles, for partners their controls. */
export interface NewToken {
  /** Holder's name (the partner id for partners); unique in its file. */
  name: string;
  /** App tokens: roles from {@link APP_ROLES}. Partner and admin tokens have fixed roles. */
  roles?: string[];
  /** Partners: media types they may send (default: all). */
  contentTypes?: string[];
  /** Partners: source addresses allowed (default: any). */
  allowCidrs?: string[];
  /** Partners: submissions per minute. */
  rateLimitPerMinute?: number;
}

/** A new random bearer token (32 bytes, base64url). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

function schemaFor(kind: TokenKind): z.ZodType<TokenEntry> {
  return (kind === 'partner' ? partnerEntrySchema : tokenEntrySchema) as z.ZodType<TokenEntry>;
}

/** The raw entries of a file (none when it does not exist), validated as the service would. */
export async function readEntries(file: string, kind: TokenKind): Promise<Array<Record<string, unknown>>> {
  if (!existsSync(file)) return [];
  loadTokenFile(file, schemaFor(kind));
  const raw = JSON.parse(await readFile(file, 'utf8')) as { tokens: Array<Record<string, unknown>> };
  return raw.tokens;
}

/** Writes the entries (0600, via a temporary file and a rename) and checks the result loads. */
export async function writeEntries(file: string, kind: TokenKind, tokens: Array<Record<string, unknown>>): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify({ tokens }, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  try {
    loadTokenFile(tmp, schemaFor(kind));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, file);
}

/** The entry stored for a new token of `kind`; throws with what is wrong. */
export function entryFor(kind: TokenKind, token: string, spec: NewToken): Record<string, unknown> {
  const sha256 = hashToken(token);
  if (kind === 'admin') return { name: spec.name, sha256, roles: ['admin'] };
  if (kind === 'app') {
    const roles = spec.roles ?? [];
    if (roles.length === 0) throw new Error(`an app token needs at least one --role (${APP_ROLES.join(', ')})`);
    for (const r of roles) if (!(APP_ROLES as readonly string[]).includes(r)) throw new Error(`unknown role "${r}" (expected ${APP_ROLES.join(', ')})`);
    return { name: spec.name, sha256, roles: [...new Set(roles)] };
  }
  if (spec.roles && spec.roles.some((r) => r !== 'partner')) throw new Error('a partner token has the role "partner" only');
  return {
    name: spec.name,
    sha256,
    roles: ['partner'],
    ...(spec.contentTypes ? { contentTypes: spec.contentTypes } : {}),
    ...(spec.allowCidrs ? { allowCidrs: spec.allowCidrs } : {}),
    ...(spec.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: spec.rateLimitPerMinute } : {}),
  };
}

/** Adds a new token to the file (created if missing); resolves with the token, to print once. */
export async function addToken(file: string, kind: TokenKind, spec: NewToken): Promise<string> {
  const tokens = await readEntries(file, kind);
  if (tokens.some((t) => t.name === spec.name)) throw new Error(`${file} already has a token named "${spec.name}" (revoke it first to replace it)`);
  const token = newToken();
  await writeEntries(file, kind, [...tokens, entryFor(kind, token, spec)]);
  return token;
}

/** Removes the token named `name`; false when there was none. */
export async function revokeToken(file: string, kind: TokenKind, name: string): Promise<boolean> {
  const tokens = await readEntries(file, kind);
  const kept = tokens.filter((t) => t.name !== name);
  if (kept.length === tokens.length) return false;
  await writeEntries(file, kind, kept);
  return true;
}
