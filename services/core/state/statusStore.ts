import { ttlAfter, type StateItem, type StateTable } from './table.ts';

/** Facts kept with one status step: codes and numbers only, never PHI. */
export interface StatusFacts {
  /** `CR_*` reason code (rejected, dead-lettered, failed). */
  reasonCode?: string;
  /** The EMR's HTTP status (delivered). */
  emrStatus?: number;
  /** The EMR's HL7 ACK code (delivered, failed over MLLP). */
  ackCode?: string;
}

/** One step of a timeline: the status, when it happened, and its facts. */
export interface StatusStep extends StatusFacts {
  /** The status reached. */
  status: string;
  /** RFC 3339 UTC time of the change. */
  at: string;
}

/** What the store holds about one envelope id. */
export interface StatusRecord {
  /** The envelope id. */
  id: string;
  /** Who may read it (partner id, or the token name that sent a chart update). */
  owner: string;
  /** The furthest status reached (a late, lower step never moves it back). */
  status: string;
  /** Every step known, in the order of the lifecycle. */
  timeline: StatusStep[];
}

/**
 * What recording a step did: `moved` (the status advanced), `filled` (an earlier step that
 * arrived late was added to the timeline; the status stands), `unchanged` (this step was
 * known already), `unknown` (no record of this id: never accepted here, or expired).
 */
export type StatusChange = 'moved' | 'filled' | 'unchanged' | 'unknown';

/** One step to record with {@link StatusStore.recordInTurn}. */
export interface StatusStepInput<S extends string> {
  /** The status reached. */
  status: S;
  /** Its facts (codes and numbers). */
  facts?: StatusFacts;
  /** When (default now). */
  at?: Date;
  /** The report that gave it (a receipt's id), kept with the step. */
  by?: string;
}

/** What {@link StatusStore.record} did, and whose record it is (known unless `unknown`). */
export interface StatusResult {
  /** What recording did. */
  change: StatusChange;
  /** The record's owner. */
  owner?: string;
  /** `unchanged` only: the step known already was recorded from this same report (`by`): its second copy. */
  sameReport?: boolean;
}

/** Statuses of envelope ids in a service's state table, moved forward only, with conditional writes. */
export interface StatusStore<S extends string> {
  /** Starts the record of an id with its first status (once: a second call, an idempotent retry, changes nothing). */
  begin(id: string, owner: string, status: S, at?: Date): Promise<StatusChange>;
  /**
   * Records a step; never moves the status backwards, whatever order steps arrive in. `by` (a
   * receipt's envelope id) is kept with the step in the same write, so a second copy of the
   * report that wrote it is known as such (`sameReport`) without an item of its own.
   */
  record(id: string, status: S, facts?: StatusFacts, at?: Date, by?: string): Promise<StatusResult>;
  /**
   * Records several steps of one id in one write, when that is what {@link record} would do with
   * each in turn: every step moves the status (their ranks rise, the first is above the current
   * status, none of them is known yet). Answers `moved` (the status is the last step's), or
   * undefined when that does not hold: nothing was written, and the caller records them one at a
   * time (which sorts out copies, late steps and unknown ids).
   */
  recordInTurn(id: string, steps: readonly StatusStepInput<S>[]): Promise<StatusResult | undefined>;
  /** The record of an id, or undefined (unknown or expired). */
  get(id: string): Promise<StatusRecord | undefined>;
  /** Whether the record of an id has reached `status` or a status ranked above it (false when unknown or expired). */
  reached(id: string, status: S): Promise<boolean>;
}

/** Options for {@link createStatusStore}. */
export interface StatusStoreOptions<S extends string> {
  /** The service's own state table. */
  table: StateTable;
  /** Item key prefix, e.g. `submission` (items `<prefix>#<id>`). */
  prefix: string;
  /** Each status's place in the lifecycle: a step moves the status only to a higher rank. */
  ranks: Readonly<Record<S, number>>;
  /** How long a record is kept, seconds (the queue retention); renewed with each change. */
  ttlSeconds: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Creates a status store. Each record is one item: `owner`, `status`, `rank`, `ttl` and a map
 * `steps` (status → time, facts, and `by`: the receipt that reported it). A step that ranks
 * higher than the current status moves it (one conditional update); one that ranks lower or
 * equal is only added to the timeline when it is not there yet (a second conditional update), so
 * concurrent writers and out-of-order receipts converge on the same record.
 */
export function createStatusStore<S extends string>(options: StatusStoreOptions<S>): StatusStore<S> {
  const { table, ranks } = options;
  const now = options.now ?? Date.now;
  const pk = (id: string): string => `${options.prefix}#${id}`;
  const stepOf = (at: Date, facts: StatusFacts): Record<string, unknown> => ({ at: at.toISOString(), ...facts });
  const rankOf = (status: S): number => {
    const rank = ranks[status];
    if (typeof rank !== 'number') throw new TypeError(`status store ${options.prefix}: unknown status "${status}"`);
    return rank;
  };

  return {
    async begin(id, owner, status, at = new Date(now())) {
      const created = await table.put(
        { pk: pk(id), owner, status, rank: rankOf(status), steps: { [status]: stepOf(at, {}) }, ttl: ttlAfter(options.ttlSeconds, now()) },
        { condition: 'attribute_not_exists(pk) OR #ttl < :nowSec', names: { '#ttl': 'ttl' }, values: { ':nowSec': Math.floor(now() / 1000) } },
      );
      return created ? 'moved' : 'unchanged';
    },
    async record(id, status, facts = {}, at = new Date(now()), by) {
      const nowSec = Math.floor(now() / 1000);
      const step = { ...stepOf(at, facts), ...(by === undefined ? {} : { by }) };
      const names = { '#steps': 'steps', '#st': status, '#status': 'status', '#rank': 'rank', '#ttl': 'ttl' };
      const moved = await table.update(pk(id), {
        update: 'SET #steps.#st = :step, #status = :st, #rank = :rank, #ttl = :ttl',
        condition: 'attribute_exists(pk) AND #ttl >= :nowSec AND #rank < :rank',
        names,
        values: { ':step': step, ':st': status, ':rank': rankOf(status), ':ttl': ttlAfter(options.ttlSeconds, now()), ':nowSec': nowSec },
      });
      if (moved) return { change: 'moved', owner: String(moved.owner) };
      const filled = await table.update(pk(id), {
        update: 'SET #steps.#st = :step',
        condition: 'attribute_exists(pk) AND #ttl >= :nowSec AND attribute_not_exists(#steps.#st)',
        names: { '#steps': 'steps', '#st': status, '#ttl': 'ttl' },
        values: { ':step': step, ':nowSec': nowSec },
      });
      if (filled) return { change: 'filled', owner: String(filled.owner) };
      const item = await table.get(pk(id));
      if (!item || Number(item.ttl) < nowSec) return { change: 'unknown' };
      const known = (item.steps as Record<string, Record<string, unknown>> | undefined)?.[status];
      return { change: 'unchanged', owner: String(item.owner), ...(by !== undefined && known?.by === by ? { sameReport: true } : {}) };
    },
    async recordInTurn(id, steps) {
      const ranked = steps.map((s) => rankOf(s.status));
      if (steps.length === 0 || ranked.some((r, i) => i > 0 && r <= ranked[i - 1]!)) return undefined;
      const names: Record<string, string> = { '#steps': 'steps', '#status': 'status', '#rank': 'rank', '#ttl': 'ttl' };
      const values: Record<string, unknown> = { ':first': ranked[0], ':rank': ranked.at(-1), ':st': steps.at(-1)!.status, ':ttl': ttlAfter(options.ttlSeconds, now()), ':nowSec': Math.floor(now() / 1000) };
      const sets: string[] = [];
      const absent: string[] = [];
      steps.forEach((s, i) => {
        names[`#s${i}`] = s.status;
        values[`:step${i}`] = { ...stepOf(s.at ?? new Date(now()), s.facts ?? {}), ...(s.by === undefined ? {} : { by: s.by }) };
        sets.push(`#steps.#s${i} = :step${i}`);
        absent.push(`attribute_not_exists(#steps.#s${i})`);
      });
      const moved = await table.update(pk(id), {
        update: `SET ${sets.join(', ')}, #status = :st, #rank = :rank, #ttl = :ttl`,
        condition: `attribute_exists(pk) AND #ttl >= :nowSec AND #rank < :first AND ${absent.join(' AND ')}`,
        names,
        values,
      });
      return moved ? { change: 'moved', owner: String(moved.owner) } : undefined;
    },
    async get(id) {
      const item = await table.get(pk(id));
      if (!item || Number(item.ttl) < Math.floor(now() / 1000)) return undefined;
      return toRecord(id, item, ranks as Record<string, number>);
    },
    async reached(id, status) {
      const item = await table.get(pk(id));
      return item !== undefined && Number(item.ttl) >= Math.floor(now() / 1000) && Number(item.rank) >= rankOf(status);
    },
  };
}

function toRecord(id: string, item: StateItem, ranks: Record<string, number>): StatusRecord {
  const steps = (item.steps ?? {}) as Record<string, Record<string, unknown>>;
  const timeline: StatusStep[] = Object.entries(steps).map(([status, step]) => ({
    status,
    at: String(step.at),
    ...(typeof step.reasonCode === 'string' ? { reasonCode: step.reasonCode } : {}),
    ...(typeof step.emrStatus === 'number' ? { emrStatus: step.emrStatus } : {}),
    ...(typeof step.ackCode === 'string' ? { ackCode: step.ackCode } : {}),
  }));
  timeline.sort((a, b) => (ranks[a.status] ?? 0) - (ranks[b.status] ?? 0) || a.at.localeCompare(b.at));
  return { id, owner: String(item.owner), status: String(item.status), timeline };
}
