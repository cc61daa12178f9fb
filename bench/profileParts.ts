// A V8 CPU profile (the format of `node --cpu-prof` and of the inspector's Profiler.stop) read
// by component and by part of a service: which package or project folder each sampled
// function belongs to, with time in Node's own internals charged to the nearest caller that is
// a package or project code. Shared by bench/cpuprofileSummary.ts and the `--cpu-profile` split of (8).

/** One node of a V8 CPU profile's call tree. */
export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** A V8 CPU profile: the call tree, the sampled node of each tick, and the µs between ticks. */
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The component a function belongs to: an npm package, a project folder, or Node/V8 itself. */
export function componentOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  // The SDK's request signing lives in the runtime folder, and the state table's own DynamoDB calls in
  // the state folder: each is charged apart, as an AWS call's.
  if (url.endsWith('/services/core/runtime/awsSha256.ts')) return 'services/core/runtime/awsSha256';
  if (url.endsWith('/services/core/state/dynamoJson.ts')) return 'services/core/state/dynamoJson';
  const own = /\/(services\/[^/]+\/[^/]+|bench)\//.exec(url);
  return own ? own[1]! : 'other';
}

/** Components that are not charged time of their own when a caller is known. */
const CHARGED_TO_CALLER = new Set(['node internals', '(native)', 'other', '(program)', '(root)']);

/** Each sample's function, read both ways: its own component, and the caller it is charged to. */
export interface ChargedSample {
  /** The sampled function, `name (component:line)`. */
  fn: string;
  /** Its component ({@link componentOf}). */
  component: string;
  /** The component its time is charged to: its own, or its nearest caller's that is a package or project code. */
  owner: string;
  /** Sampled µs. */
  us: number;
}

/** Every sample of a profile with its function, component and owner (see {@link ChargedSample}). */
export function chargeSamples(p: Profile): ChargedSample[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const owners = new Map<number, string>();
  const owner = (id: number): string => {
    const known = owners.get(id);
    if (known !== undefined) return known;
    let found: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined && found === undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const c = componentOf(f.url, f.functionName);
      if (!CHARGED_TO_CALLER.has(c)) found = c;
    }
    const f = byId.get(id)!.callFrame;
    const result = found ?? componentOf(f.url, f.functionName);
    owners.set(id, result);
    return result;
  };
  return p.samples.map((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const component = componentOf(url, functionName);
    return { fn: `${functionName || '(anonymous)'} (${component}${url ? `:${lineNumber + 1}` : ''})`, component, owner: owner(id), us: p.timeDeltas[i] ?? 0 };
  });
}

/** What a service's main thread spends its time on, as (8) reports it. */
export const PARTS = ['crypto', 'awsSdk', 'http', 'audit', 'log', 'gc', 'rest'] as const;

/** One of {@link PARTS}. */
export type Part = (typeof PARTS)[number];

/** How each part is labelled in the report. */
export const PART_LABELS: Readonly<Record<Part, string>> = {
  crypto: 'crypto (openpgp.js, envelope)',
  awsSdk: 'AWS calls (SQS by the SDK, DynamoDB)',
  http: 'HTTP server (fastify, intake routes)',
  audit: 'audit trail',
  log: 'logging',
  gc: 'GC',
  rest: 'the rest (relay, state, receipts, inbox, Node)',
};

/** The part an owner component belongs to; `(idle)` belongs to none. */
export function partOf(owner: string): Part | undefined {
  if (owner === '(idle)') return undefined;
  if (owner === '(garbage collector)') return 'gc';
  if (owner === 'openpgp' || owner.startsWith('@openpgp/') || owner === 'services/core/envelope') return 'crypto';
  if (owner.startsWith('@smithy/') || owner.startsWith('@aws-sdk/') || owner.startsWith('@aws-crypto/') || owner === 'services/core/runtime/awsSha256' || owner === 'services/core/state/dynamoJson') return 'awsSdk';
  if (['fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'ajv', 'ajv-formats', 'services/core/http', 'services/interface/intake'].includes(owner) || owner.startsWith('@fastify/')) return 'http';
  if (owner === 'services/core/audit' || owner === 'services/core/alerts') return 'audit';
  if (owner === 'pino' || owner.startsWith('@pinojs/') || owner.startsWith('pino-') || owner === 'services/core/log') return 'log';
  return 'rest';
}

/** Each part's share of the busy (not idle) time sampled, 0–1; `busyUs` the busy µs sampled. */
export function partShares(p: Profile): { shares: Record<Part, number>; busyUs: number } {
  const us = Object.fromEntries(PARTS.map((k) => [k, 0])) as Record<Part, number>;
  let busy = 0;
  for (const s of chargeSamples(p)) {
    const part = partOf(s.owner);
    if (part === undefined) continue;
    us[part] += s.us;
    busy += s.us;
  }
  const shares = Object.fromEntries(PARTS.map((k) => [k, busy === 0 ? 0 : us[k] / busy])) as Record<Part, number>;
  return { shares, busyUs: busy };
}
