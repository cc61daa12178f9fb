import { EnvelopeError } from './errors.ts';

/** Largest SQS body `open` will look at: twice the SQS limit; anything bigger is rejected before parsing. */
export const MAX_ARMORED_CHARS = 2 * 1024 * 1024;

const BEGIN = '-----BEGIN PGP MESSAGE-----';
const END = '-----END PGP MESSAGE-----';
const HEADER = /^[A-Za-z0-9-]+: [\x20-\x7e]*$/;
const DATA = /^[A-Za-z0-9+/=]+$/;
const CHECKSUM = /^=[A-Za-z0-9+/]{4}$/;

const CRC24_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
    table[n] = crc & 0xffffff;
  }
  return table;
})();

/** CRC-24 of RFC 4880 section 6.1 (the armor checksum), table-driven. */
export function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  // An indexed loop: `for…of` over a typed array allocates an iterator result per byte wherever
  // V8 does not inline the iterator (e.g. once both Buffers and plain Uint8Arrays come here).
  for (let i = 0; i < data.length; i++) crc = ((crc << 8) & 0xffffff) ^ CRC24_TABLE[((crc >> 16) ^ data[i]!) & 0xff]!;
  return crc;
}

function reject(message: string): never {
  throw new EnvelopeError('CR_ENVELOPE_NOT_OPENPGP', message);
}

/**
 * Strict ASCII-armor decoding of a `PGP MESSAGE` block: LF or CRLF line ends, optional
 * `Key: value` headers, a blank line, canonical base64, and the CRC-24 checksum line when
 * present must match. Unlike lenient decoders, no change to the text can leave the bytes
 * unchanged, so a damaged message is always rejected. Throws `CR_ENVELOPE_NOT_OPENPGP`.
 */
export function dearmorMessage(text: string): Uint8Array {
  const normalized = text.replaceAll('\r\n', '\n');
  if (normalized.includes('\r')) reject('armor has a bare carriage return');
  const lines = normalized.replace(/^\n+/, '').replace(/\n+$/, '').split('\n');
  if (lines[0] !== BEGIN) reject(`not an ASCII-armored OpenPGP message (expected "${BEGIN}")`);
  if (lines[lines.length - 1] !== END || lines.length < 4) reject(`armor is not closed by "${END}"`);
  let i = 1;
  while (i < lines.length - 1 && lines[i] !== '') {
    if (!HEADER.test(lines[i]!)) reject('armor header lines are malformed or the blank line after them is missing');
    i++;
  }
  if (lines[i] !== '') reject('armor has no blank line before the data');
  const body = lines.slice(i + 1, -1);
  let checksum: string | undefined;
  if (body.length > 0 && CHECKSUM.test(body[body.length - 1]!)) checksum = body.pop()!.slice(1);
  if (body.length === 0) reject('armor holds no data');
  for (const line of body) if (!DATA.test(line)) reject('armor data is not base64');
  const joined = body.join('');
  // Node's encoder writes only canonical base64 (padding at the end, zero pad bits): the lines hold
  // only base64 characters, so the round trip is equal exactly when the text is canonical.
  const bytes = Buffer.from(joined, 'base64');
  if (bytes.toString('base64') !== joined) reject('armor data is not canonical base64');
  if (checksum !== undefined) {
    const crc = crc24(bytes);
    const expected = Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64');
    if (expected !== checksum) reject('armor checksum does not match: the message was altered');
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Base64 characters per armor line, as openpgp.js writes them (GnuPG writes 64; readers take any). */
const LINE_CHARS = 60;

/**
 * ASCII-armors an OpenPGP message exactly as openpgp.js 6 does for a SEIPDv1 message: the
 * `BEGIN` line, an empty header, base64 in lines of 60 characters, the CRC-24 line
 * (GnuPG 2.2 needs it), the `END` line. One pass over the bytes, no streams: openpgp.js's
 * own armoring was a quarter of the cost of a 4 KiB seal (docs/benchmarks.md).
 */
export function armorMessage(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += LINE_CHARS) lines.push(b64.slice(i, i + LINE_CHARS));
  const crc = crc24(bytes);
  const checksum = Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64');
  return `${BEGIN}\n\n${lines.join('\n')}\n=${checksum}\n${END}\n`;
}
