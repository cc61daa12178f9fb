// What `care-relay status` learns outside SQS: emergency mode from the service's state table
// (shared by every instance, readable while the service is down) and, from the running service's
// admin endpoint (GET /v1/admin/status), its audit trail head and (app) its inbox fill.
import { dynamoEmergencyStore } from '../core/state/emergencyStore.ts';
import { openStateTable } from '../core/state/table.ts';
import { stateTableName } from '../core/state/tables.ts';
import { errorCode } from '../core/transport/errors.ts';
import type { OpsConfig, ServiceEndpoint } from './config.ts';

/** A value, or why it is not known (a code and a short reason, never a response body). */
export type Known<T> = { ok: true; value: T } | { ok: false; code: string; reason: string };

/** Emergency mode as persisted (the reason is never shown: it is free text). */
export interface EmergencyView {
  /** Whether it is on. */
  active: boolean;
  /** When it last changed (ISO 8601), when it was ever saved. */
  changedAt: string | null;
  /** Who changed it (a token name). */
  actor: string | null;
  /** The state table it was read from. */
  table: string;
}

/** Reads a service's emergency mode from its state table. */
export async function readEmergency(cfg: OpsConfig, service: string): Promise<Known<EmergencyView>> {
  const table = openStateTable({ table: stateTableName(cfg.env.QUEUE_PREFIX, service), ...cfg.aws(cfg.env.DYNAMODB_ENDPOINT) });
  try {
    const saved = await dynamoEmergencyStore(table).load();
    return { ok: true, value: { active: saved?.active ?? false, changedAt: saved?.changedAt ?? null, actor: saved?.actor ?? null, table: table.name } };
  } catch (err) {
    return { ok: false, code: 'CR_CLI_STATE_UNREADABLE', reason: `state table ${table.name}: ${errorCode(err)}` };
  } finally {
    await table.close();
  }
}

/** What the admin status endpoint answers. */
export interface LiveStatus {
  /** Emergency mode as this instance applies it. */
  emergency: { active: boolean };
  /** Head of the audit trail, when the service keeps one. */
  auditHead: { seq: number; hash: string } | null;
  /** App: inbox fill. */
  inbox: { records: number; capacity: number } | null;
}

function isLive(v: unknown): v is LiveStatus {
  const o = v as LiveStatus | null;
  return typeof o === 'object' && o !== null && typeof o.emergency?.active === 'boolean' && (o.auditHead === null || typeof o.auditHead?.seq === 'number') && (o.inbox === null || typeof o.inbox?.records === 'number');
}

/** Reads a running service's admin status endpoint (5 s timeout). */
export async function readLiveStatus(endpoint: ServiceEndpoint | undefined, envName: string, fetchImpl: typeof fetch = fetch): Promise<Known<LiveStatus>> {
  if (!endpoint) return { ok: false, code: 'CR_CLI_SERVICE_UNREACHABLE', reason: `not configured (set ${envName})` };
  if (!endpoint.token) return { ok: false, code: 'CR_CLI_SERVICE_UNREACHABLE', reason: 'no admin token (set CARE_RELAY_ADMIN_TOKEN or CARE_RELAY_ADMIN_TOKEN_FILE)' };
  try {
    const res = await fetchImpl(`${endpoint.url}/v1/admin/status`, { headers: { authorization: `Bearer ${endpoint.token}`, accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      await res.body?.cancel();
      return { ok: false, code: 'CR_CLI_SERVICE_UNREACHABLE', reason: `${endpoint.url} answered ${res.status}` };
    }
    const body: unknown = await res.json();
    if (!isLive(body)) return { ok: false, code: 'CR_CLI_SERVICE_UNREACHABLE', reason: `${endpoint.url} gave an answer of another shape` };
    return { ok: true, value: { emergency: { active: body.emergency.active }, auditHead: body.auditHead, inbox: body.inbox } };
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return { ok: false, code: 'CR_CLI_SERVICE_UNREACHABLE', reason: `${endpoint.url}: ${errorCode(cause ?? err)}` };
  }
}
