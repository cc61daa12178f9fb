import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('docs/compliance.md', () => {
  it('names only tests that exist: every › "test name" is a test in the file cited before it', async () => {
    const doc = await readFile(join(root, 'docs', 'compliance.md'), 'utf8');
    let file: string | undefined;
    const missing: string[] = [];
    let cited = 0;
    for (const m of doc.matchAll(/(test\/[\w/.-]+\.test\.ts)|› "([^"]+)"/g)) {
      if (m[1]) {
        file = m[1];
        continue;
      }
      expect(file, `a test name before any test file: ${m[2]}`).toBeDefined();
      const source = await readFile(join(root, file!), 'utf8');
      const name = m[2]!;
      const wanted = name.endsWith('…') ? name.slice(0, -1).trimEnd() : name;
      cited++;
      if (!new RegExp(`\\bit\\(\\s*['\`]${wanted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`).test(source)) missing.push(`${file}: ${name}`);
    }
    expect(cited).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });

  it('cites only code files that exist', async () => {
    const doc = await readFile(join(root, 'docs', 'compliance.md'), 'utf8');
    const files = new Set([...doc.matchAll(/`((?:services|test)\/[\w/.-]+\.ts)`/g)].map((m) => m[1]!));
    expect(files.size).toBeGreaterThan(15);
    const absent: string[] = [];
    for (const f of files) await readFile(join(root, f)).catch(() => absent.push(f));
    expect(absent).toEqual([]);
  });
});
