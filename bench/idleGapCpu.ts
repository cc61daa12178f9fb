// CPU per seal + open of a 4 KiB submission when the operations come alone, with idle time between
// them (what a lone message's crypto costs): `node bench/idleGapCpu.ts [rounds]`. One seal then one
// open at a time, on this thread, keys loaded once, after 1,500 of them; alternated in rounds: back to
// back, then with 1 ms, 5 ms and 20 ms of sleep between operations; and, for comparison, 16 pairs in
// flight on the same thread (each step of one pair then runs next to the same step of the others, as
// in a busy service). Prints the process's CPU µs per seal + open (libuv's pool, where WebCrypto runs
// the curve operations, included), median of the rounds. As the services, openpgp.js's curve and
// key-wrap calls run on this thread unless CRYPTO_INLINE=false (bench/lib.ts, `benchInline`). A
// measuring tool, not a section of `npm run bench` ("`acknowledged` waits for company too").
import { cpus } from 'node:os';
import { open } from '../services/core/envelope/open.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { installInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';
import { benchInline, makeBenchKeys, sleep, submissionEnvelope } from './lib.ts';

const GAPS_MS = [0, 1, 5, 20] as const;
const OPERATIONS = 200;
const WARMUP = 1500;

if (benchInline()) installInlineSubtle();
const keys = await makeBenchKeys();
const ctx = { own: keys.app.keys.own, peers: keys.app.keys.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 };
const envelope = submissionEnvelope(4096);
const sealAndOpen = async (): Promise<void> => {
  const sealed = await seal(envelope, keys.interface.keys.own, keys.interface.keys.peers);
  await open(sealed.body, ctx);
};

/** CPU µs per seal + open, counted around each pair only (the sleep between is not counted). */
async function cpuPerPair(gapMs: number): Promise<number> {
  let us = 0;
  for (let i = 0; i < OPERATIONS; i++) {
    const before = process.cpuUsage();
    await sealAndOpen();
    const used = process.cpuUsage(before);
    us += used.user + used.system;
    if (gapMs > 0) await sleep(gapMs);
  }
  return us / OPERATIONS;
}

/** CPU µs per seal + open with `inFlight` pairs in flight at once, counted over all of them. */
async function cpuInFlight(inFlight: number): Promise<number> {
  let next = 0;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < OPERATIONS) await sealAndOpen();
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / OPERATIONS;
}

const IN_FLIGHT = 16;
const rounds = Math.max(1, Number(process.argv[2] ?? 3));
for (let i = 0; i < WARMUP; i++) await sealAndOpen();
const figures = new Map<number, number[]>(GAPS_MS.map((g) => [g, []]));
const inFlight: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const gap of GAPS_MS) figures.get(gap)!.push(await cpuPerPair(gap));
  inFlight.push(await cpuInFlight(IN_FLIGHT));
}
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}; ${rounds} rounds of ${OPERATIONS} per gap`);
const line = (label: string, all: number[]): void => {
  console.log(`${label.padEnd(16)} CPU µs per seal + open: median ${Math.round(median(all))} (rounds: ${all.map((v) => Math.round(v)).join(', ')})`);
};
for (const gap of GAPS_MS) line(`${gap} ms between`, figures.get(gap)!);
line(`${IN_FLIGHT} in flight`, inFlight);
