// Keeps the README true: every variable the services read is in its configuration
// table, every npm script it names exists, and every docs/ file it links exists.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { appEnvSchema } from '../../services/app/config.ts';
import { interfaceEnvSchema } from '../../services/interface/config.ts';

const readme = readFileSync('README.md', 'utf8');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };

describe('README', () => {
  it('documents every environment variable of both services', () => {
    const names = new Set([...Object.keys(interfaceEnvSchema.shape), ...Object.keys(appEnvSchema.shape)]);
    const missing = [...names].filter((name) => !readme.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('names only npm scripts that exist', () => {
    const named = [...readme.matchAll(/npm run ([a-z:]+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    for (const script of named) expect(pkg.scripts, `npm run ${script}`).toHaveProperty(script);
    expect(pkg.scripts).toHaveProperty('start');
    expect(pkg.scripts).toHaveProperty('test');
  });

  it('links only docs that exist', () => {
    const linked = [...readme.matchAll(/\]\((docs\/[^)]+)\)/g)].map((m) => m[1]!);
    expect(linked.length).toBeGreaterThan(0);
    for (const path of linked) expect(existsSync(path), path).toBe(true);
  });
});
