import { readFileSync } from 'node:fs';
import { CallbackConfigError } from './reasons.ts';

const WHSEC = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

/** Signing keys of one partner's callbacks; printing or serialising them shows nothing. */
export class CallbackSecrets {
  readonly #keys: readonly Buffer[];

  constructor(keys: readonly Buffer[]) {
    this.#keys = keys;
  }

  /** The HMAC keys (the base64-decoded part after `whsec_`), in file order. */
  keys(): readonly Buffer[] {
    return this.#keys;
  }

  /** How many secrets sign each callback. */
  get size(): number {
    return this.#keys.length;
  }

  /** Never the keys. */
  toJSON(): string {
    return `[${this.#keys.length} callback secret(s)]`;
  }

  /** Never the keys. */
  toString(): string {
    return this.toJSON();
  }
}

/**
 * Reads a callback secret file: one Standard Webhooks secret per line (`whsec_` + base64 of 24
 * to 64 random bytes), blank lines and `#` comments ignored. Several lines are a rotation: every
 * callback is signed with each, and the receiver accepts any one it knows. Errors name the file
 * and the line, never a value from it.
 */
export function readCallbackSecrets(file: string, read: (path: string) => string = (path) => readFileSync(path, 'utf8')): CallbackSecrets {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new CallbackConfigError(`callback secret file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  const keys: Buffer[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = WHSEC.exec(line);
    const key = match ? Buffer.from(match[1]!, 'base64') : undefined;
    if (!key || key.length < 24 || key.length > 64) {
      throw new CallbackConfigError(`callback secret file ${file}: line ${i + 1}: expected whsec_ followed by the base64 of 24 to 64 bytes`);
    }
    keys.push(key);
  }
  if (keys.length === 0) throw new CallbackConfigError(`callback secret file ${file}: expected at least one whsec_ secret`);
  return new CallbackSecrets(keys);
}
