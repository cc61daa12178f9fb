import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultEmergencyStateFile, fileEmergencyStore } from '../../../services/core/runtime/emergencyStore.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-emergency-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fileEmergencyStore', () => {
  it('loads nothing when no state was saved, then round-trips a saved state in a 0600 file with no temporary file left', async () => {
    const file = join(dir, 'state', 'iface.emergency.json');
    const store = fileEmergencyStore(file);
    expect(await store.load()).toBeUndefined();
    const state = { active: true, changedAt: '2026-11-30T04:00:00.000Z', actor: 'admin', reason: 'drill' };
    await store.save(state);
    expect(await store.load()).toEqual(state);
    await store.save({ active: false, changedAt: '2026-11-30T05:00:00.000Z', actor: 'admin' });
    expect(await store.load()).toEqual({ active: false, changedAt: '2026-11-30T05:00:00.000Z', actor: 'admin' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'state'))).toEqual(['iface.emergency.json']);
  });

  it('refuses a stored state that is not exactly the expected shape, naming the file and the field', async () => {
    const file = join(dir, 'bad.json');
    const store = fileEmergencyStore(file);
    for (const [content, field] of [
      ['{"active": tr', 'not valid JSON'],
      [JSON.stringify({ active: null, changedAt: '2026-11-30T04:00:00Z', actor: 'admin' }), 'active'],
      [JSON.stringify({ active: true, changedAt: 'yesterday', actor: 'admin' }), 'changedAt'],
      [JSON.stringify({ active: true, changedAt: '2026-11-30T04:00:00Z', actor: 'admin', extra: 1 }), '(root)'],
      [JSON.stringify({ active: true, changedAt: '2026-11-30T04:00:00Z', actor: 'admin', reason: 'x'.repeat(501) }), 'reason'],
    ] as const) {
      await writeFile(file, content);
      await expect(store.load(), content).rejects.toMatchObject({ code: 'CR_EMERGENCY_STATE_INVALID', message: expect.stringContaining(`emergency state file ${file}: ${field}`) });
    }
  });

  it('defaults next to the audit file', () => {
    expect(defaultEmergencyStateFile('/var/lib/care-relay/audit/interface.jsonl')).toBe('/var/lib/care-relay/audit/interface.emergency.json');
  });
});
