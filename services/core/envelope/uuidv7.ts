import { randomBytes } from 'node:crypto';

/** A lower-case UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, random rest. */
export const UUIDV7_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A new UUIDv7 for the given time (milliseconds since the epoch; now by default). */
export function uuidv7(nowMs: number = Date.now()): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs >= 2 ** 48) {
    throw new RangeError('uuidv7: time must be an integer number of milliseconds in [0, 2^48)');
  }
  const b = randomBytes(16);
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** True when `value` is a lower-case UUIDv7. */
export function isUuidV7(value: unknown): value is string {
  return typeof value === 'string' && UUIDV7_PATTERN.test(value);
}

/** The creation time embedded in a UUIDv7. */
export function uuidv7Time(id: string): Date {
  if (!isUuidV7(id)) throw new TypeError('not a UUIDv7');
  return new Date(parseInt(id.slice(0, 8) + id.slice(9, 13), 16));
}
