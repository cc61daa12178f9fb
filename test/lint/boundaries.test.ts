// The lint rules that keep the layout honest, run through ESLint's Node API on snippets
// placed (virtually) where they would live: they must fire on a violation and stay quiet otherwise.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

async function ruleIds(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

// The first lint loads typescript-eslint and the whole config: slow on a busy machine.
describe('lint: services/ never load test code', { timeout: 120_000 }, () => {
  it('refuses a static import of test/ from the CLI', async () => {
    const ids = await ruleIds('services/cli/x.ts', "import { startFakeSignalWire } from '../../test/fakes/signalwire/index.ts';\nvoid startFakeSignalWire;\n");
    expect(ids).toContain('no-restricted-imports');
  });

  it('refuses a dynamic import of test/ (what `npm start` once did)', async () => {
    const ids = await ruleIds('services/cli/x.ts', "export const load = () => import('../../test/helpers/wait.ts');\n");
    expect(ids).toContain('no-restricted-syntax');
  });

  it('refuses test/ imports from core and from each service, where the service-boundary rules also apply', async () => {
    for (const file of ['services/core/x.ts', 'services/interface/x.ts', 'services/app/x.ts', 'services/devtools/x.ts']) {
      const ids = await ruleIds(file, "import { waitFor } from '../../test/helpers/wait.ts';\nvoid waitFor;\n");
      expect(ids, file).toContain('no-restricted-imports');
    }
  });

  it('still refuses one service importing the other', async () => {
    expect(await ruleIds('services/interface/x.ts', "import { Inbox } from '../app/inbox/inbox.ts';\nvoid Inbox;\n")).toContain('no-restricted-imports');
    expect(await ruleIds('services/core/x.ts', "import { Inbox } from '../app/inbox/inbox.ts';\nvoid Inbox;\n")).toContain('no-restricted-imports');
  });

  it('refuses the dev tools (fakes, emulator, demo sink) in core and in either service', async () => {
    for (const file of ['services/core/x.ts', 'services/interface/x.ts', 'services/app/x.ts']) {
      expect(await ruleIds(file, "import { startEmrSink } from '../devtools/emrSink.ts';\nvoid startEmrSink;\n"), file).toContain('no-restricted-imports');
    }
  });

  it('allows the dev tools from the CLI, and test/ from the tests', async () => {
    expect(await ruleIds('services/cli/x.ts', "export const load = () => import('../devtools/signalwire/index.ts');\n")).toEqual([]);
    expect(await ruleIds('test/x.test.ts', "import { waitFor } from './helpers/wait.ts';\nvoid waitFor;\n")).toEqual([]);
  });
});
