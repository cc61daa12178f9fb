import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENVELOPE_ERROR_CODES } from '../../../services/core/envelope/errors.ts';
import { KEY_ERROR_CODES } from '../../../services/core/keys/errors.ts';

const root = join(import.meta.dirname, '..', '..', '..');

/** Codes documented as rows of a docs/errors.md table: `| \`CODE\` | status | meaning |`. */
async function documentedCodes(): Promise<Set<string>> {
  const text = await readFile(join(root, 'docs', 'errors.md'), 'utf8');
  return new Set([...text.matchAll(/^\| `(CR_[A-Z0-9_]+)` \|[^|]+\|[^|]*\S[^|]*\|$/gm)].map((m) => m[1]!));
}

/** Every `CR_ENVELOPE_*` / `CR_KEY_*` literal in the sources of the envelope and keys modules and the keys command. */
async function codesInSources(): Promise<Set<string>> {
  const files = [
    ...(await readdir(join(root, 'services/core/envelope'))).map((f) => join('services/core/envelope', f)),
    ...(await readdir(join(root, 'services/core/keys'))).map((f) => join('services/core/keys', f)),
    'services/cli/keys.ts',
  ];
  const codes = new Set<string>();
  for (const file of files) {
    for (const m of (await readFile(join(root, file), 'utf8')).matchAll(/'(CR_(?:ENVELOPE|KEY)_[A-Z_]+)'/g)) codes.add(m[1]!);
  }
  return codes;
}

describe('error codes', () => {
  it('every CR_ENVELOPE_* and CR_KEY_* code is documented in docs/errors.md', async () => {
    const documented = await documentedCodes();
    const missing = [...ENVELOPE_ERROR_CODES, ...KEY_ERROR_CODES].filter((c) => !documented.has(c));
    expect(missing).toEqual([]);
  });

  it('the code uses no envelope or key code outside the catalogues', async () => {
    const catalogue = new Set<string>([...ENVELOPE_ERROR_CODES, ...KEY_ERROR_CODES]);
    expect([...(await codesInSources())].filter((c) => !catalogue.has(c))).toEqual([]);
  });
});
