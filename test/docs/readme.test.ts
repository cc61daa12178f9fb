// Keeps the README true: every variable the services read is in its configuration
// table, every npm script it names exists, and every docs/ file it links exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { appEnvSchema } from '../../services/app/config.ts';
import { interfaceEnvSchema } from '../../services/interface/config.ts';

const readme = readFileSync('README.md', 'utf8');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
  engines: { node: string };
  volta?: { node: string };
  allowScripts?: Record<string, boolean>;
};

/** The major version a semver range or version starts with (`^24.1.0`, `>=24.0.0`, `24` → 24). */
const major = (range: string): number => Number(/(\d+)/.exec(range)?.[1]);

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

  it('shows the quick start on its first screen as exactly two commands: npm install, npm start', () => {
    const firstScreen = readme.split('\n').slice(0, 20).join('\n');
    const block = /```sh\n([\s\S]*?)```/.exec(firstScreen)?.[1];
    expect(block).toBe('npm install\nnpm start\n');
    expect(readme).not.toMatch(/source scripts\/node24\.sh\s+#/);
  });
});

describe('Node 24 on a machine with an older node', () => {
  it('brings Node 24 as a dev dependency (npm scripts run on node_modules/.bin/node) and names it for nvm, fnm and Volta', () => {
    expect(major(pkg.devDependencies.node ?? '')).toBe(24);
    expect(major(pkg.engines.node)).toBe(24);
    expect(major(pkg.volta?.node ?? '')).toBe(24);
    // Its preinstall script fetches the binary: allowed explicitly, so npm neither warns nor skips it.
    expect(pkg.allowScripts?.node).toBe(true);
    expect(readFileSync('.nvmrc', 'utf8').trim()).toBe('24');
    expect(readFileSync('.node-version', 'utf8').trim()).toBe('24');
  });

  it('runs the tests on that Node 24 when started through npm (npm test, npm run test:unit)', () => {
    if (!process.env.npm_lifecycle_event) return expect(major(process.versions.node)).toBeGreaterThanOrEqual(24);
    expect(realpathSync(process.execPath)).toBe(realpathSync('node_modules/node/bin/node'));
  });

  it('check-node tells an older node to run npm install, and lets Node 24 through', () => {
    const asNode20 = "Object.defineProperty(process.versions, 'node', { value: '20.20.2' }); Object.defineProperty(process, 'version', { value: 'v20.20.2' }); await import('./scripts/check-node.mjs');";
    const old = spawnSync(process.execPath, ['--input-type=module', '-e', asNode20], { encoding: 'utf8' });
    expect(old.status).toBe(1);
    expect(old.stderr).toContain('this is v20.20.2');
    expect(old.stderr).toContain('Run `npm install`');
    const current = spawnSync(process.execPath, ['scripts/check-node.mjs'], { encoding: 'utf8' });
    expect(current.status).toBe(0);
    expect(current.stderr).toBe('');
  });

  it('CI installs with npm ci and needs no separate Node setup', () => {
    const ci = readFileSync('.ci/run', 'utf8');
    expect(ci).toMatch(/^npm ci /m);
    expect(ci).toMatch(/^npm test /m);
    expect(ci).not.toContain('node24.sh');
  });
});

