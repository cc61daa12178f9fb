// The partners file's callbacks: https only (plain http only to loopback with the development
// switch), no credentials in the URL, the secret in a file of its own; all or nothing on reload.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashToken } from '../../../services/core/http/auth.ts';
import { createCallbackTargets } from '../../../services/interface/callbacks/targets.ts';
import { newWhsec } from '../../helpers/webhookReceiver.ts';

let dir: string;
let secret: string;
const partnersFile = (): string => join(dir, 'partners.json');

async function writePartners(callback: Record<string, unknown> | undefined, extra: Record<string, unknown>[] = []): Promise<void> {
  const acme = { name: 'acme-health', sha256: hashToken('acme-token-0123456789'), ...(callback ? { callback } : {}) };
  await writeFile(partnersFile(), JSON.stringify({ tokens: [acme, ...extra] }));
}

function loadError(allowInsecure = false): Error & { code?: string } {
  try {
    createCallbackTargets({ partnersFile: partnersFile(), allowInsecure });
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('the partners file was accepted');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-cb-targets-'));
  secret = newWhsec();
  await writeFile(join(dir, 'acme.whsec'), `${secret}\n`);
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('partner callbacks in the partners file', () => {
  it('loads an https callback with a secret file relative to the partners file', async () => {
    await writePartners({ url: 'https://hooks.acme.example/care-relay?tenant=7', secretFile: 'acme.whsec' });
    const targets = createCallbackTargets({ partnersFile: partnersFile(), allowInsecure: false });
    expect(targets.size).toBe(1);
    expect(targets.get('acme-health')?.url.href).toBe('https://hooks.acme.example/care-relay?tenant=7');
    expect(targets.get('acme-health')?.secrets.size).toBe(1);
    expect(targets.get('other')).toBeUndefined();
  });

  it('refuses plain http to a host that is not loopback, even with the development switch', async () => {
    await writePartners({ url: 'http://hooks.acme.example/care-relay', secretFile: 'acme.whsec' });
    for (const allowInsecure of [false, true]) {
      const err = loadError(allowInsecure);
      expect(err.message).toContain('tokens.0.callback.url: expected an https URL (plain http only to a loopback host), got http://hooks.acme.example');
    }
    await writePartners({ url: 'http://10.0.0.8:8080/hook', secretFile: 'acme.whsec' });
    expect(loadError(true).message).toContain('plain http only to a loopback host');
  });

  it('refuses plain http to loopback unless PARTNER_CALLBACK_ALLOW_INSECURE is on (development)', async () => {
    await writePartners({ url: 'http://127.0.0.1:9999/hook', secretFile: 'acme.whsec' });
    const err = loadError(false);
    expect(err.code).toBe('CR_CALLBACK_CONFIG_INVALID');
    expect(err.message).toBe(`partners file ${partnersFile()}: partner "acme-health": callback.url: plain http to a loopback host needs PARTNER_CALLBACK_ALLOW_INSECURE=true (local development only)`);
    expect(createCallbackTargets({ partnersFile: partnersFile(), allowInsecure: true }).size).toBe(1);
  });

  it('refuses a URL with credentials, and names neither of them', async () => {
    await writePartners({ url: 'https://relay:hunter2-secret@hooks.acme.example/care-relay', secretFile: 'acme.whsec' });
    const err = loadError();
    expect(err.message).toContain('callback.url: expected no user name or password in the URL');
    expect(err.message).not.toContain('hunter2');
  });

  it('refuses other schemes, fragments and unknown fields', async () => {
    await writePartners({ url: 'ftp://hooks.acme.example/x', secretFile: 'acme.whsec' });
    expect(loadError().message).toContain('expected an https URL, got ftp:');
    await writePartners({ url: 'https://hooks.acme.example/x#frag', secretFile: 'acme.whsec' });
    expect(loadError().message).toContain('expected no #fragment');
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'acme.whsec', secret });
    const err = loadError();
    expect(err.message).toContain('callback');
    expect(err.message).not.toContain(secret.slice(6));
  });

  it('refuses a missing or malformed secret file, naming the file and line, never its content', async () => {
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'missing.whsec' });
    expect(loadError().message).toContain('callback.secretFile: callback secret file');
    expect(loadError().message).toContain('cannot read (ENOENT)');
    await writeFile(join(dir, 'bad.whsec'), `${secret}\nwhsec_c2hvcnQ=\n`);
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'bad.whsec' });
    expect(loadError().message).toContain('line 2: expected whsec_ followed by the base64 of 24 to 64 bytes');
    await writeFile(join(dir, 'plain.whsec'), 'my-password-is-long-enough-1234567890\n');
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'plain.whsec' });
    expect(loadError().message).not.toContain('my-password');
    await writeFile(join(dir, 'empty.whsec'), '# nothing yet\n');
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'empty.whsec' });
    expect(loadError().message).toContain('expected at least one whsec_ secret');
  });

  it('reload: a bad callback changes nothing; a good one (a rotated secret) is swapped in', async () => {
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'acme.whsec' });
    const targets = createCallbackTargets({ partnersFile: partnersFile(), allowInsecure: false });
    const before = targets.get('acme-health');
    await writePartners({ url: 'http://hooks.acme.example/x', secretFile: 'acme.whsec' });
    expect(() => targets.prepare()).toThrow(/callback\.url/);
    expect(targets.get('acme-health')).toBe(before);
    await writeFile(join(dir, 'acme.whsec'), `${secret}\n${newWhsec()}\n`);
    await writePartners({ url: 'https://hooks.acme.example/y', secretFile: join(dir, 'acme.whsec') });
    const swap = targets.prepare();
    expect(targets.get('acme-health')).toBe(before);
    swap();
    expect(targets.get('acme-health')?.url.pathname).toBe('/y');
    expect(targets.get('acme-health')?.secrets.size).toBe(2);
  });

  it('reload: the first callback of a service that started without any needs a restart (its queue is resolved at start)', async () => {
    await writePartners(undefined);
    const targets = createCallbackTargets({ partnersFile: partnersFile(), allowInsecure: false });
    await writePartners({ url: 'https://hooks.acme.example/x', secretFile: 'acme.whsec' });
    expect(() => targets.prepare()).toThrow(/restart it to add the first one/);
    expect(targets.size).toBe(0);
  });
});
