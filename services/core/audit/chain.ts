import { createHash } from 'node:crypto';
import type { AuditEvent } from './types.ts';

/** `prev` of the first entry of a trail: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** One line of the audit trail as written: the event plus time, sequence and chain. */
export interface AuditEntry extends AuditEvent {
  /** 1 for the first line of a file, then +1 per line. */
  seq: number;
  /** RFC 3339 UTC time the trail recorded the event. */
  ts: string;
  /** Service that wrote the line. */
  service: string;
  /** `hash` of the previous line ({@link GENESIS_HASH} for the first). */
  prev: string;
  /** sha256 hex of `prev` + canonical JSON of this entry without `hash`. */
  hash: string;
}

/** JSON with object keys sorted at every depth and no whitespace: the hashed form of an entry. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(obj[key])}`);
  }
  return `{${parts.join(',')}}`;
}

/** The chain hash of an entry: sha256(prev + canonical JSON of the entry without `hash`). */
export function entryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = entry;
  return createHash('sha256').update(entry.prev + canonicalJson(rest), 'utf8').digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Parses one line and checks its shape and its own hash; returns the entry or why it is bad. */
export function parseEntryLine(line: string): { entry: AuditEntry } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { reason: 'malformed JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { reason: 'not a JSON object' };
  const e = value as Record<string, unknown>;
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return { reason: 'missing or invalid seq' };
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) return { reason: 'missing or invalid prev' };
  if (typeof e.hash !== 'string' || !HEX64.test(e.hash)) return { reason: 'missing or invalid hash' };
  for (const field of ['ts', 'service', 'action', 'actor', 'resourceType', 'outcome'] as const) {
    if (typeof e[field] !== 'string') return { reason: `missing or invalid ${field}` };
  }
  const entry = e as unknown as AuditEntry;
  if (entryHash(entry) !== entry.hash) return { reason: 'hash mismatch (entry was altered)' };
  return { entry };
}
