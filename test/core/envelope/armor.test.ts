import { randomBytes } from 'node:crypto';
import { armor, enums, readMessage } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armorMessage, dearmorMessage } from '../../../services/core/envelope/armor.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { sampleEnvelope } from './craft.ts';

let keys: TestServiceKeyPair;
beforeAll(async () => {
  keys = await makeServiceKeyPair();
});
afterAll(() => keys.cleanup());

describe('armorMessage (seal armors the binary message itself)', () => {
  it('writes exactly the text openpgp.js armors the same message to', async () => {
    // Bodies whose base64 ends on a full line, one char short of it, and in between.
    for (const size of [1, 44, 45, 46, 89, 90, 4096, 4097, 65_536]) {
      const sealed = await seal(sampleEnvelope({ body: randomBytes(size).toString('base64').slice(0, size) }), keys.interface.own, keys.interface.peers);
      const binary = dearmorMessage(sealed.body);
      // What openpgp.js's encrypt({ format: 'armored' }) wrote before: its armor, with the checksum of a SEIPDv1 message.
      expect(sealed.body, `size ${size}`).toBe(armor(enums.armor.message, binary, undefined, undefined, undefined, true));
      expect(await readMessage({ armoredMessage: sealed.body })).toBeDefined();
    }
  });

  it('round-trips any bytes through the strict decoder, and matches openpgp.js armor with its checksum', () => {
    for (let n = 1; n < 200; n++) {
      const bytes = randomBytes(n);
      const text = armorMessage(bytes);
      expect(text).toBe(armor(enums.armor.message, bytes, undefined, undefined, undefined, true));
      expect(text).toMatch(/\n=[A-Za-z0-9+/]{4}\n-----END PGP MESSAGE-----\n$/);
      expect(Buffer.from(dearmorMessage(text))).toEqual(bytes);
    }
  });

  it('keeps a changed byte detectable: the checksum of one message does not fit another', () => {
    const bytes = randomBytes(300);
    const text = armorMessage(bytes);
    const other = Buffer.from(bytes);
    other[10] = other[10]! ^ 1;
    const forged = armorMessage(other).replace(/=[A-Za-z0-9+/]{4}\n/, text.match(/=[A-Za-z0-9+/]{4}\n/)![0]);
    expect(() => dearmorMessage(forged)).toThrow(/checksum/);
  });

  it('refuses every non-canonical base64 spelling of the same bytes, with or without a checksum', () => {
    // 1 and 2 bytes: "QQ==" and "QUI=" are canonical; these decode to the same bytes in lenient decoders.
    const spell = (b64: string, withChecksum: boolean): string => {
      const crc = armorMessage(Buffer.from('A')).match(/\n(=[A-Za-z0-9+/]{4})\n/)![1];
      return `-----BEGIN PGP MESSAGE-----\n\n${b64}\n${withChecksum ? `${crc}\n` : ''}-----END PGP MESSAGE-----\n`;
    };
    expect(Buffer.from(dearmorMessage(spell('QQ==', true)))).toEqual(Buffer.from('A'));
    for (const b64 of ['QR==', 'QQ', 'QQ=', 'QQ===', 'Q=Q=', '=QQ=', 'QQ==QQ==', 'QUJ=']) {
      for (const withChecksum of [true, false]) expect(() => dearmorMessage(spell(b64, withChecksum)), `${b64} ${withChecksum}`).toThrow(/not canonical base64|checksum/);
    }
  });
});
