// What openpgp.js's WebCrypto calls cost against Node's synchronous crypto for the same operations:
// `node bench/webCryptoHop.ts [rounds]`. A seal of the services' keys makes these curve and key-wrap
// calls through WebCrypto (openpgp.js 6): an Ed25519 signature (the private key imported from JWK),
// an ephemeral X25519 key pair exported as JWK and a shared secret with the recipient's key, and an
// AES key wrap; an open makes the X25519 agreement with its own private key, the AES key unwrap and
// an Ed25519 verification. Node runs every WebCrypto curve and key-wrap operation as a job on libuv's
// thread pool; `crypto.sign`, `crypto.diffieHellman` and `createCipheriv('id-aes128-wrap')` do the same
// operations on the calling thread. Both ways are timed one group at a time, back to back and with 5 ms
// of idle between groups (a message at a low rate), alternated in rounds: CPU µs of the whole process
// (libuv's pool included) and wall µs per group. Then whole seals and opens of a 4 KiB submission
// (services/core/envelope, the bench's keys), with envelope/inlineSubtle.ts installed and not, alternated
// in rounds in this one process: 16 in flight and one at a time. A measuring tool, not a section of
// `npm run bench` (docs/benchmarks.md, "openpgp.js's WebCrypto calls on the calling thread").
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, sign, verify, type JsonWebKey as NodeJwk } from 'node:crypto';
import { cpus } from 'node:os';
import type { webcrypto } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { installInlineSubtle, uninstallInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';
import { open } from '../services/core/envelope/open.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { makeBenchKeys, submissionEnvelope } from './lib.ts';

const subtle = globalThis.crypto.subtle;
const signer = generateKeyPairSync('ed25519');
const signerPrivateJwk = signer.privateKey.export({ format: 'jwk' }) as webcrypto.JsonWebKey;
const signerPublicJwk = signer.publicKey.export({ format: 'jwk' }) as webcrypto.JsonWebKey;
const recipient = generateKeyPairSync('x25519');
const recipientPrivateJwk = recipient.privateKey.export({ format: 'jwk' }) as webcrypto.JsonWebKey;
const recipientPublicJwk = recipient.publicKey.export({ format: 'jwk' }) as webcrypto.JsonWebKey;
const hashed = randomBytes(32);
const kek = randomBytes(16);
const sessionKey = randomBytes(16);
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

// The sealed pieces an open works on, made once each way.
const signature = sign(null, hashed, signer.privateKey);
const ephemeral = generateKeyPairSync('x25519');
const ephemeralPublicJwk = ephemeral.publicKey.export({ format: 'jwk' }) as webcrypto.JsonWebKey;
const wrap = (key: Buffer, data: Buffer): Buffer => {
  const c = createCipheriv('id-aes128-wrap', key, AES_KW_IV);
  return Buffer.concat([c.update(data), c.final()]);
};
const unwrap = (key: Buffer, data: Buffer): Buffer => {
  const d = createDecipheriv('id-aes128-wrap', key, AES_KW_IV);
  return Buffer.concat([d.update(data), d.final()]);
};
// RFC 3394 either way: the WebCrypto open below unwraps what Node's cipher wrapped.
const wrapped = wrap(kek, sessionKey);

/** The curve and key-wrap calls of one seal, as openpgp.js makes them through WebCrypto. */
async function sealCallsWebCrypto(): Promise<void> {
  const signingKey = await subtle.importKey('jwk', signerPrivateJwk, 'Ed25519', false, ['sign']);
  await subtle.sign('Ed25519', signingKey, hashed);
  const pair = (await subtle.generateKey('X25519', true, ['deriveKey', 'deriveBits'])) as webcrypto.CryptoKeyPair;
  await subtle.exportKey('jwk', pair.publicKey);
  await subtle.exportKey('jwk', pair.privateKey);
  const peer = await subtle.importKey('jwk', recipientPublicJwk, 'X25519', false, []);
  await subtle.deriveBits({ name: 'X25519', public: peer }, pair.privateKey, 256);
  const wrappingKey = await subtle.importKey('raw', kek, { name: 'AES-KW' }, false, ['wrapKey']);
  const keyToWrap = await subtle.importKey('raw', sessionKey, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
  await subtle.wrapKey('raw', keyToWrap, wrappingKey, { name: 'AES-KW' });
}

/** The same operations with Node's synchronous crypto. */
async function sealCallsSync(): Promise<void> {
  sign(null, hashed, createPrivateKey({ key: signerPrivateJwk as NodeJwk, format: 'jwk' }));
  const pair = generateKeyPairSync('x25519');
  pair.publicKey.export({ format: 'jwk' });
  pair.privateKey.export({ format: 'jwk' });
  diffieHellman({ privateKey: pair.privateKey, publicKey: createPublicKey({ key: recipientPublicJwk as NodeJwk, format: 'jwk' }) });
  wrap(kek, sessionKey);
}

/** The curve and key-wrap calls of one open, as openpgp.js makes them through WebCrypto. */
async function openCallsWebCrypto(): Promise<void> {
  const own = await subtle.importKey('jwk', recipientPrivateJwk, 'X25519', false, ['deriveKey', 'deriveBits']);
  const sender = await subtle.importKey('jwk', ephemeralPublicJwk, 'X25519', false, []);
  await subtle.deriveBits({ name: 'X25519', public: sender }, own, 256);
  const wrappingKey = await subtle.importKey('raw', kek, { name: 'AES-KW' }, false, ['unwrapKey']);
  const unwrapped = await subtle.unwrapKey('raw', wrapped, wrappingKey, { name: 'AES-KW' }, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
  await subtle.exportKey('raw', unwrapped);
  const verifyKey = await subtle.importKey('jwk', signerPublicJwk, 'Ed25519', false, ['verify']);
  if (!(await subtle.verify('Ed25519', verifyKey, signature, hashed))) throw new Error('Ed25519: signature not verified');
}

/** The same operations with Node's synchronous crypto. */
async function openCallsSync(): Promise<void> {
  diffieHellman({ privateKey: createPrivateKey({ key: recipientPrivateJwk as NodeJwk, format: 'jwk' }), publicKey: createPublicKey({ key: ephemeralPublicJwk as NodeJwk, format: 'jwk' }) });
  unwrap(kek, wrapped);
  if (!verify(null, hashed, createPublicKey({ key: signerPublicJwk as NodeJwk, format: 'jwk' }), signature)) throw new Error('Ed25519: signature not verified');
}

type Way = [name: string, run: () => Promise<void>];
const WAYS: Way[] = [
  ['seal\'s calls, WebCrypto (openpgp.js)', sealCallsWebCrypto],
  ['seal\'s calls, synchronous', sealCallsSync],
  ['open\'s calls, WebCrypto (openpgp.js)', openCallsWebCrypto],
  ['open\'s calls, synchronous', openCallsSync],
];

async function time(run: () => Promise<void>, groups: number, gapMs: number): Promise<{ cpu: number; wall: number }> {
  let wall = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < groups; i++) {
    const t = performance.now();
    await run();
    wall += performance.now() - t;
    if (gapMs > 0) await sleep(gapMs);
  }
  const used = process.cpuUsage(start);
  return { cpu: (used.user + used.system) / groups, wall: (wall * 1000) / groups };
}

const rounds = Number(process.argv[2] ?? 5);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a whole number ≥ 1, not ${process.argv[2]}`);
console.log(`${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; ${rounds} rounds, alternated`);
for (const [, run] of WAYS) for (let i = 0; i < 500; i++) await run(); // warm-up
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const gapMs of [0, 5]) {
  const groups = gapMs === 0 ? 2000 : 300;
  const results = WAYS.map(() => ({ cpu: [] as number[], wall: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, [, run]] of WAYS.entries()) {
      const { cpu, wall } = await time(run, groups, gapMs);
      results[i]!.cpu.push(cpu);
      results[i]!.wall.push(wall);
    }
  }
  console.log(gapMs === 0 ? 'back to back:' : `${gapMs} ms of idle between groups:`);
  for (const [i, [name]] of WAYS.entries()) {
    console.log(`  ${name.padEnd(40)} CPU µs per group ${median(results[i]!.cpu).toFixed(0).padStart(5)}   wall µs ${median(results[i]!.wall).toFixed(0).padStart(5)}`);
  }
}

// Whole seals and opens, the inline calls installed and not.
const keys = await makeBenchKeys();
const envelope = submissionEnvelope(4096);
const ctx = { own: keys.app.keys.own, peers: keys.app.keys.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 };
const sealAndOpen = async (): Promise<void> => {
  const sealed = await seal(envelope, keys.interface.keys.own, keys.interface.keys.peers);
  if ((await open(sealed.body, ctx)).id !== envelope.id) throw new Error('opened another envelope');
};
/** CPU µs (the process) and wall µs per seal + open, `inFlight` at a time. */
async function pairs(count: number, inFlight: number): Promise<{ cpu: number; wall: number }> {
  let next = 0;
  const start = process.cpuUsage();
  const t = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next++ < count) await sealAndOpen();
  }));
  const used = process.cpuUsage(start);
  return { cpu: (used.user + used.system) / count, wall: ((performance.now() - t) * 1000) / count };
}
const modes: [string, () => void][] = [['WebCrypto jobs (CRYPTO_INLINE=false)', uninstallInlineSubtle], ['inline (CRYPTO_INLINE, the default)', installInlineSubtle]];
for (const [, set] of modes) {
  set();
  await pairs(1000, 16); // warm-up
}
for (const inFlight of [16, 1]) {
  const results = modes.map(() => ({ cpu: [] as number[], wall: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, [, set]] of modes.entries()) {
      set();
      const { cpu, wall } = await pairs(inFlight === 1 ? 500 : 1000, inFlight);
      results[i]!.cpu.push(cpu);
      results[i]!.wall.push(wall);
    }
  }
  console.log(`seal + open of 4 KiB, ${inFlight} in flight (median of ${rounds} rounds):`);
  for (const [i, [name]] of modes.entries()) {
    const cpu = median(results[i]!.cpu);
    console.log(`  ${name.padEnd(40)} CPU µs per seal + open ${cpu.toFixed(0).padStart(5)} (${(cpu / median(results[0]!.cpu)).toFixed(2)})   wall µs ${median(results[i]!.wall).toFixed(0).padStart(5)}`);
  }
}
