import fc from 'fast-check';
import { armor, enums } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dearmorMessage } from '../../../services/core/envelope/armor.ts';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import { EnvelopeError } from '../../../services/core/envelope/errors.ts';
import { open, type OpenContext } from '../../../services/core/envelope/open.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { appContext, sampleEnvelope } from './craft.ts';

let keys: TestServiceKeyPair;
let ctx: OpenContext;
let sealed: string;
let binary: Uint8Array;

beforeAll(async () => {
  keys = await makeServiceKeyPair();
  ctx = appContext(keys.app);
  sealed = (await seal(sampleEnvelope(), keys.interface.own, keys.interface.peers)).body;
  binary = dearmorMessage(sealed);
  await open(sealed, ctx); // the unmodified message is accepted
});
afterAll(() => keys.cleanup());

/** Opens and returns the EnvelopeError; fails the test on success or on any other error. */
async function rejection(input: unknown): Promise<EnvelopeError> {
  try {
    await open(input, ctx);
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw new Error(`not an EnvelopeError: ${String(err)}`, { cause: err });
    return err;
  }
  throw new Error('a tampered message was accepted');
}

const rearmor = (bytes: Uint8Array) => armor(enums.armor.message, bytes, undefined, undefined, undefined, true);

describe('tampering', () => {
  it('a flipped byte at any position of the armored body is rejected', async () => {
    for (let i = 0; i < sealed.length; i++) {
      for (const mask of [0x01, 0x20, 0x80 ^ ((i * 37) & 0x7f)]) {
        const flipped = sealed.slice(0, i) + String.fromCharCode(sealed.charCodeAt(i) ^ mask) + sealed.slice(i + 1);
        if (flipped === sealed) continue;
        const err = await rejection(flipped);
        expect(err.code).toMatch(/^CR_ENVELOPE_/);
      }
    }
  });

  it('property: a changed byte in the ciphertext, re-armored with a valid checksum, is rejected or opens to the very same envelope', async () => {
    const original = await open(sealed, ctx);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: binary.length - 1 }), fc.integer({ min: 1, max: 255 }), async (pos, mask) => {
        const bytes = Uint8Array.from(binary);
        bytes[pos]! ^= mask;
        // A few multi-bit changes of a packet header re-encode the same packet in the other
        // OpenPGP header format (e.g. 0xC1 → 0x84: new → old format, same tag and length),
        // which GnuPG itself writes: the same message, framed differently. Anything that
        // opens must therefore be exactly the original envelope; everything else is rejected.
        let opened: unknown;
        try {
          opened = await open(rearmor(bytes), ctx);
        } catch (err) {
          expect(err).toBeInstanceOf(EnvelopeError);
          return;
        }
        expect(opened).toEqual(original);
      }),
      { numRuns: 400 },
    );
  });

  it('regression: a session key packet re-framed in the old header format (what GnuPG writes) opens to the same envelope', async () => {
    const bytes = Uint8Array.from(binary);
    bytes[0]! ^= 0x45;
    expect(await open(rearmor(bytes), ctx)).toEqual(await open(sealed, ctx));
  });

  it('regression: a flipped low bit of the session key packet\'s MPI bit count is rejected (the parser reads by byte count)', async () => {
    // Byte 13 is the low byte of the ECDH ephemeral point's bit count in the PKESK packet.
    for (const mask of [0x01, 0x02, 0x04]) {
      const bytes = Uint8Array.from(binary);
      bytes[13]! ^= mask;
      expect((await rejection(rearmor(bytes))).code).toBe('CR_ENVELOPE_NOT_OPENPGP');
    }
  });

  it('regression: a flipped top bit of the X25519 ephemeral key (ignored by X25519 itself) is rejected', async () => {
    // PKESK body: version, key id (8), algorithm, MPI bit count (2), 0x40, 32 bytes little-endian.
    const header = 2;
    const bytes = Uint8Array.from(binary);
    bytes[header + 44]! ^= 0x80;
    expect((await rejection(rearmor(bytes))).code).toBe('CR_ENVELOPE_NOT_OPENPGP');
  });

  it('every single-bit flip anywhere in the binary message is rejected', async () => {
    for (let pos = 0; pos < binary.length; pos++) {
      for (let bit = 0; bit < 8; bit++) {
        const bytes = Uint8Array.from(binary);
        bytes[pos]! ^= 1 << bit;
        await rejection(rearmor(bytes));
      }
    }
  }, 120_000);

  it('property: truncation, insertion and deletion of ciphertext bytes are rejected', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: binary.length - 1 }), fc.nat({ max: 64 }), fc.uint8Array({ maxLength: 16 }), async (pos, cut, insert) => {
        const bytes = new Uint8Array([...binary.slice(0, pos), ...insert, ...binary.slice(Math.min(binary.length, pos + cut))]);
        if (Buffer.from(bytes).equals(Buffer.from(binary))) return;
        await rejection(rearmor(bytes));
      }),
      { numRuns: 100 },
    );
  });

  it('property: random text, random armored bytes and random values are rejected with an EnvelopeError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.string({ maxLength: 300 }).map((s) => `-----BEGIN PGP MESSAGE-----\n\n${s}\n-----END PGP MESSAGE-----\n`),
          fc.uint8Array({ maxLength: 600 }).map(rearmor),
          fc.anything(),
        ),
        async (input) => {
          await rejection(input);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: any sealed envelope opens to itself (round trip through real crypto)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 500 }), fc.uint8Array({ maxLength: 500 })), async (body) => {
        const env = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/octet-stream', body });
        const { body: armored } = await seal(env, keys.interface.own, keys.interface.peers);
        expect(await open(armored, ctx)).toEqual(env);
      }),
      { numRuns: 25 },
    );
  });

  it('accepts CRLF line endings and a missing checksum, as gpg and mail-safe transports may produce', async () => {
    expect(await open(sealed.replaceAll('\n', '\r\n'), ctx)).toBeDefined();
    expect(await open(armor(enums.armor.message, binary, undefined, undefined, undefined, false), ctx)).toBeDefined();
  });
});
