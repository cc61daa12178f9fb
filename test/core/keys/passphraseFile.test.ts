// KEY_PASSPHRASE (or its _FILE) holds one passphrase per line, tried in order: after a
// rotation whose new key has a new passphrase, the service is given both and loads the new
// key and the older, decrypt-only one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePrivateKeyFile, writeServiceKeyFolder } from '../../../services/core/keys/files.ts';
import { generateServiceKey } from '../../../services/core/keys/generate.ts';
import { loadServiceKeys } from '../../../services/core/keys/load.ts';
import { loadInterfaceConfig } from '../../../services/interface/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'cr-passphrases-'));
const keysDir = join(dir, 'keys');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  const [next, old, peer] = await Promise.all([
    generateServiceKey({ service: 'interface', passphrase: 'new passphrase' }),
    generateServiceKey({ service: 'interface', passphrase: 'old passphrase' }),
    generateServiceKey({ service: 'app', passphrase: 'peer' }),
  ]);
  await writeServiceKeyFolder({ dir: keysDir, privateKey: next.privateKey, publicKey: next.publicKey, peers: [{ name: 'app', publicKey: peer.publicKey }] });
  await writePrivateKeyFile(join(keysDir, 'private-20260101T000000Z.asc'), old.privateKey);
}, 60_000);

function config(passphraseFileContent: string): ReturnType<typeof loadInterfaceConfig> {
  const file = join(dir, `pass-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, passphraseFileContent, { mode: 0o600 });
  return loadInterfaceConfig({ KEYS_DIR: keysDir, KEY_PASSPHRASE_FILE: file, PARTNERS_FILE: join(dir, 'partners.json'), EMR_URL: 'http://127.0.0.1:9/x', HMAC_KEY: 'k'.repeat(48), AUDIT_FILE: join(dir, 'audit.jsonl') });
}

describe('KEY_PASSPHRASE_FILE with several lines', () => {
  it('loads the current key and an older key that has another passphrase', async () => {
    const keys = await loadServiceKeys({ dir: keysDir, passphrase: config('new passphrase\nold passphrase\n').KEY_PASSPHRASE });
    expect(keys.own.current.isDecrypted()).toBe(true);
    expect(keys.own.older).toHaveLength(1);
    expect(keys.own.older[0]!.isDecrypted()).toBe(true);
  });

  it('with only the new passphrase, the old key does not load (what the second line is for)', async () => {
    await expect(loadServiceKeys({ dir: keysDir, passphrase: config('new passphrase\n').KEY_PASSPHRASE })).rejects.toMatchObject({ code: 'CR_KEY_WRONG_PASSPHRASE' });
  });

  it('a file of empty lines is refused at start, naming the variable', () => {
    expect(() => config('\n\n')).toThrow(/^KEY_PASSPHRASE: required: at least one non-empty line/);
  });
});
