import { enums, type Message } from 'openpgp';

/** One top-level packet: its tag and the raw bytes of its body. */
interface RawPacket {
  tag: number;
  body: Uint8Array;
}

/**
 * Walks the leading key packets (PKESK, SKESK) of a binary OpenPGP message and returns
 * their raw bodies; stops at the first other packet (the encrypted data, which may use
 * partial lengths). Returns undefined when a header cannot be read: the parser reports that.
 */
function leadingKeyPackets(binary: Uint8Array): RawPacket[] | undefined {
  const packets: RawPacket[] = [];
  let i = 0;
  while (i < binary.length) {
    const first = binary[i]!;
    if ((first & 0x80) === 0) return undefined;
    let tag: number;
    let length: number;
    let offset = i + 1;
    if (first & 0x40) {
      tag = first & 0x3f;
      const l1 = binary[offset++];
      if (l1 === undefined) return undefined;
      if (l1 < 192) length = l1;
      else if (l1 < 224) length = ((l1 - 192) << 8) + (binary[offset++] ?? 0) + 192;
      else if (l1 === 255) {
        length = new DataView(binary.buffer, binary.byteOffset + offset, 4).getUint32(0);
        offset += 4;
      } else length = -1; // partial body length: never used by key packets
    } else {
      tag = (first >> 2) & 0x0f;
      const type = first & 0x03;
      const size = type === 0 ? 1 : type === 1 ? 2 : type === 2 ? 4 : 0;
      if (size === 0 || offset + size > binary.length) length = -1;
      else {
        length = 0;
        for (let k = 0; k < size; k++) length = length * 256 + binary[offset + k]!;
        offset += size;
      }
    }
    if (tag !== enums.packet.publicKeyEncryptedSessionKey && tag !== enums.packet.symEncryptedSessionKey) break;
    if (length < 0 || offset + length > binary.length) return undefined;
    packets.push({ tag, body: binary.subarray(offset, offset + length) });
    i = offset + length;
  }
  return packets;
}

/**
 * X25519 ignores the top bit of a public u-coordinate (RFC 7748, section 5), so a flipped
 * top bit of the ephemeral key in an ECDH session key packet would still decrypt. Honest
 * senders (GnuPG, openpgp.js) always leave it clear; a set bit means the packet was altered.
 */
function x25519PointIsCanonical(body: Uint8Array): boolean {
  const ECDH = 18;
  if (body[0] !== 3 || body[9] !== ECDH) return true;
  const bits = (body[10]! << 8) | body[11]!;
  // Curve25519 points are native-encoded: 0x40 then 32 bytes little-endian (263 bits).
  if (bits !== 263 || body[12] !== 0x40 || body.length < 45) return true;
  return (body[44]! & 0x80) === 0;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, k) => v === b[k]);
}

/**
 * True when every public-key encrypted session key packet is encoded canonically: its
 * raw bytes are exactly what serializing the parsed packet gives. A parser that reads
 * an MPI by its byte count ignores the low bits of the declared bit count, so without
 * this check those bits could be flipped outside the ciphertext's integrity protection
 * and the message would still open. The same holds for the top bit of an X25519
 * ephemeral key. care-relay treats any change to a message as tampering.
 */
export function keyPacketsAreCanonical(binary: Uint8Array, message: Message<Uint8Array>): boolean {
  const raw = leadingKeyPackets(binary);
  if (raw === undefined) return false;
  const parsed = message.packets.filter((p) => p.constructor.name === 'PublicKeyEncryptedSessionKeyPacket') as unknown as Array<{ write(): Uint8Array }>;
  const rawPkesk = raw.filter((p) => p.tag === enums.packet.publicKeyEncryptedSessionKey);
  if (rawPkesk.length !== parsed.length) return false;
  return rawPkesk.every((p, k) => equalBytes(p.body, parsed[k]!.write()) && x25519PointIsCanonical(p.body));
}
