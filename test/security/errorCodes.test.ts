import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SMS_ERRORS } from '../../services/app/sms/errors.ts';
import { CORE_ERROR_CATALOGUES } from '../../services/core/errors/catalogue.ts';
import type { ErrorCatalogue } from '../../services/core/errors/defineErrors.ts';
import { CALLBACK_REASONS } from '../../services/interface/callbacks/reasons.ts';
import { EMR_REASONS } from '../../services/interface/delivery/reasons.ts';
import { MLLP_ERRORS } from '../../services/interface/mllp/errors.ts';

const root = join(import.meta.dirname, '..', '..');

/** Every catalogue of the services: core's registry plus each service's own. */
const CATALOGUES: Record<string, ErrorCatalogue> = { ...CORE_ERROR_CATALOGUES, sms: SMS_ERRORS, emr: EMR_REASONS, mllp: MLLP_ERRORS, callbacks: CALLBACK_REASONS };

const entries = Object.entries(CATALOGUES).flatMap(([area, catalogue]) => Object.entries(catalogue).map(([code, def]) => ({ area, code, def })));

/** The rows of docs/errors.md tables: `| \`CODE\` | status | meaning |`, by code. */
async function documentedRows(): Promise<Map<string, string[]>> {
  const doc = await readFile(join(root, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const m of doc.matchAll(/^\| `(CR_[A-Za-z0-9_<>]+)` \| ([^|]+) \|[^|]*\S[^|]*\|$/gm)) {
    rows.set(m[1]!, [...(rows.get(m[1]!) ?? []), m[2]!.trim()]);
  }
  return rows;
}

/** True when a documented status cell (`413`, `—`, `401 / 403`, `4xx`) allows the catalogued status. */
function statusMatches(cell: string, status: number | undefined): boolean {
  const parts = cell.split('/').map((p) => p.trim());
  if (status === undefined) return parts.length === 1 && parts[0] === '—';
  return parts.some((p) => p === String(status) || (/^\dxx$/.test(p) && p[0] === String(status)[0]));
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('error catalogues', () => {
  it('every catalogued code is documented in docs/errors.md with its HTTP status', async () => {
    const rows = await documentedRows();
    expect(entries.length).toBeGreaterThan(60);
    const problems: string[] = [];
    for (const { area, code, def } of entries) {
      const cells = rows.get(code);
      if (cells === undefined) problems.push(`${code} (${area}): not documented`);
      else if (!statusMatches(cells[0]!, def.status)) problems.push(`${code} (${area}): documented status "${cells[0]}", catalogue ${def.status ?? '—'}`);
      if (def.code !== code) problems.push(`${code} (${area}): entry carries code ${def.code}`);
    }
    expect(problems).toEqual([]);
  });

  it('no code is declared in two catalogues, nor documented twice', async () => {
    const codes = entries.map((e) => e.code);
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
    const twice = [...(await documentedRows())].filter(([, cells]) => cells.length > 1).map(([code]) => code);
    expect(twice).toEqual([]);
  });

  it('every documented code is in a catalogue (the docs list no code the services cannot emit)', async () => {
    const catalogued = new Set(entries.map((e) => e.code));
    expect([...(await documentedRows()).keys()].filter((c) => !catalogued.has(c))).toEqual([]);
  });

  it('the services use no CR_* code outside the catalogues (declare new ones with defineErrors)', async () => {
    const catalogued = new Set(entries.map((e) => e.code));
    const families = [...catalogued].filter((c) => c.includes('<')).map((c) => c.slice(0, c.indexOf('<')));
    const stray: string[] = [];
    for (const file of await sourceFiles(join(root, 'services'))) {
      const text = await readFile(file, 'utf8');
      const where = relative(root, file);
      for (const m of text.matchAll(/['"`](CR_[A-Z0-9_]+)['"`]/g)) if (!catalogued.has(m[1]!)) stray.push(`${m[1]} (${where})`);
      for (const m of text.matchAll(/`(CR_[A-Z0-9_]*_)\$\{/g)) if (!families.includes(m[1]!)) stray.push(`${m[1]}<...> (${where})`);
    }
    expect(stray).toEqual([]);
  });
});
