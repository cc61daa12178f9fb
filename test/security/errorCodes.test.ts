import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/**
 * Every code the services can emit: `'CR_...'` / `"CR_..."` string literals, and the fixed
 * prefix of template literals that build one (`CR_EMR_HTTP_${status}` → `CR_EMR_HTTP_`).
 */
async function codesInServices(): Promise<{ codes: Map<string, string>; prefixes: Map<string, string> }> {
  const codes = new Map<string, string>();
  const prefixes = new Map<string, string>();
  for (const file of await sourceFiles(join(root, 'services'))) {
    const text = await readFile(file, 'utf8');
    const where = relative(root, file);
    for (const m of text.matchAll(/['"](CR_[A-Z0-9_]+)['"]/g)) codes.set(m[1]!, where);
    for (const m of text.matchAll(/`(CR_[A-Z0-9_]*_)\$\{/g)) prefixes.set(m[1]!, where);
  }
  return { codes, prefixes };
}

describe('error codes', () => {
  it('every public error code the services can emit is documented in docs/errors.md', async () => {
    const doc = await readFile(join(root, 'docs', 'errors.md'), 'utf8');
    // A documented code is the first cell of a table row: | `CODE` | status | meaning |
    const rows = new Set([...doc.matchAll(/^\| `(CR_[A-Z0-9_]+(?:<[a-zA-Z]+>)?)` \|[^|]+\|[^|]*\S[^|]*\|$/gm)].map((m) => m[1]!));
    const { codes, prefixes } = await codesInServices();
    expect(codes.size).toBeGreaterThan(50);
    const missing = [...codes].filter(([code]) => !rows.has(code)).map(([code, file]) => `${code} (${file})`);
    const missingPrefixes = [...prefixes].filter(([prefix]) => ![...rows].some((r) => r.startsWith(`${prefix}<`))).map(([p, file]) => `${p}<...> (${file})`);
    expect([...missing, ...missingPrefixes]).toEqual([]);
  });

  it('no code is documented twice', async () => {
    const doc = await readFile(join(root, 'docs', 'errors.md'), 'utf8');
    const all = [...doc.matchAll(/^\| `(CR_[A-Z0-9_<>a-z]+)` \|/gm)].map((m) => m[1]!);
    expect(all.filter((c, i) => all.indexOf(c) !== i)).toEqual([]);
  });
});
