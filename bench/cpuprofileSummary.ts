// Summarizes `node --cpu-prof` output: self time by component (package or project folder)
// and the top functions, with no machine paths. Usage:
//   node --cpu-prof --cpu-prof-dir=<dir> bench/run.ts --only=e2e && node bench/cpuprofileSummary.ts <dir>/*.cpuprofile
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
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
  const own = /\/(services\/[^/]+\/[^/]+|bench)\//.exec(url);
  return own ? own[1]! : 'other';
}

function summarize(file: string, top: number): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time in Node internals (hashing, sockets, streams) is charged to the nearest caller that is a package or project code.
  const owner = (id: number): string => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const c = componentOf(f.url, f.functionName);
      if (!['node internals', '(native)', 'other', '(program)', '(root)'].includes(c)) return c;
    }
    const f = byId.get(id)!.callFrame;
    return componentOf(f.url, f.functionName);
  };
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const { functionName, url, lineNumber } = n.callFrame;
    const c = componentOf(url, functionName);
    const o = owner(id);
    byOwner.set(o, (byOwner.get(o) ?? 0) + dt);
    const f = `${functionName || '(anonymous)'} (${c}${url ? `:${lineNumber + 1}` : ''})`;
    byFunction.set(f, (byFunction.get(f) ?? 0) + dt);
  });
  const pct = (v: number): string => `${((v / total) * 100).toFixed(1).padStart(5)}%`;
  const name = file.split('/').at(-1);
  console.log(`\n${name}: ${(total / 1e6).toFixed(1)} s sampled`);
  console.log('  by component, Node internals charged to their caller:');
  for (const [k, v] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(v)}  ${k}`);
  console.log('  top functions (self time):');
  for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(v)}  ${k}`);
}

for (const file of process.argv.slice(2)) summarize(file, 15);
