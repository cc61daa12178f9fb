// Summarizes `node --cpu-prof` output: self time by component (package or project folder)
// and the top functions, with no machine paths. Usage:
//   node --cpu-prof --cpu-prof-dir=<dir> bench/run.ts --only=e2e && node bench/cpuprofileSummary.ts <dir>/*.cpuprofile
import { readFileSync } from 'node:fs';
import { chargeSamples, type Profile } from './profileParts.ts';

function summarize(file: string, top: number): void {
  const samples = chargeSamples(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const s of samples) {
    total += s.us;
    byOwner.set(s.owner, (byOwner.get(s.owner) ?? 0) + s.us);
    byFunction.set(s.fn, (byFunction.get(s.fn) ?? 0) + s.us);
  }
  const pct = (v: number): string => `${((v / total) * 100).toFixed(1).padStart(5)}%`;
  const name = file.split('/').at(-1);
  console.log(`\n${name}: ${(total / 1e6).toFixed(1)} s sampled`);
  console.log('  by component, Node internals charged to their caller:');
  for (const [k, v] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(v)}  ${k}`);
  console.log('  top functions (self time):');
  for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(v)}  ${k}`);
}

for (const file of process.argv.slice(2)) summarize(file, 15);
