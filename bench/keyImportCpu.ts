// What openpgp.js's per-operation key imports cost: `node bench/keyImportCpu.ts [rounds]`. openpgp.js imports
// the own and the peer's Ed25519 and X25519 keys from JWK for every seal and open; envelope/inlineSubtle.ts
// makes a repeated import from the KeyObject of the first (IMPORTED_KEYS_KEPT). Seals and opens of a 4 KiB
// submission (services/core/envelope, the bench's keys, inlineSubtle installed as the services install it),
// alternated in rounds in this one process: as the services run them, and with every import made anew
// (`forgetImportedKeys()` before each seal and each open, so Node's importKey and the KeyObject's parse run
// every time, plus the digest and the forgetting: a little more than the code before the change). CPU µs
// of the process per seal + open, 16 in flight and one at a time, median of the rounds, and each round's
// ratio. A measuring tool, not a section of `npm run bench` (docs/benchmarks.md, "Keys imported once").
import { forgetImportedKeys, installInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';
import { open } from '../services/core/envelope/open.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { makeBenchKeys, percentile, submissionEnvelope } from './lib.ts';

const rounds = Number(process.argv[2] ?? 7);
installInlineSubtle();
const keys = await makeBenchKeys();
const envelope = submissionEnvelope(4096);
const ctx = { own: keys.app.keys.own, peers: keys.app.keys.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 };
let importEveryTime = false;

const sealAndOpen = async (): Promise<void> => {
  if (importEveryTime) forgetImportedKeys();
  const sealed = await seal(envelope, keys.interface.keys.own, keys.interface.keys.peers);
  if (importEveryTime) forgetImportedKeys();
  if ((await open(sealed.body, ctx)).id !== envelope.id) throw new Error('opened another envelope');
};

/** CPU µs of the process per seal + open, `inFlight` at a time. */
async function pairs(count: number, inFlight: number): Promise<number> {
  let next = 0;
  const start = process.cpuUsage();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next++ < count) await sealAndOpen();
  }));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

for (const every of [true, false]) {
  importEveryTime = every;
  await pairs(1000, 16); // warm-up
}
for (const inFlight of [16, 1]) {
  const kept: number[] = [];
  const anew: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which way goes first, so that neither always follows the other.
    for (const every of r % 2 === 0 ? [true, false] : [false, true]) {
      importEveryTime = every;
      (every ? anew : kept).push(await pairs(inFlight === 1 ? 500 : 1000, inFlight));
    }
  }
  const ratio = percentile(kept, 50) / percentile(anew, 50);
  console.log(`seal + open of 4 KiB, ${inFlight} in flight, CPU µs (median of ${rounds} rounds): every import anew ${percentile(anew, 50).toFixed(0)}, imports kept ${percentile(kept, 50).toFixed(0)} (${ratio.toFixed(2)}); rounds ${kept.map((k, i) => (k / anew[i]!).toFixed(2)).join(' ')}`);
}
