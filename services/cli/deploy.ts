// `care-relay deploy prepare`: everything docker-compose.yml needs, made consistently in one
// step: both key folders (keys/<service>, no passphrase inside), and per service under
// secrets/<service>/ the key passphrase, the HMAC key and the token files, whose tokens are
// printed once.
import { randomBytes } from 'node:crypto';
import { mkdir, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateServiceKey } from '../core/keys/generate.ts';
import { exists, writePrivateKeyFile, writeServiceKeyFolder } from '../core/keys/files.ts';
import { addToken } from './tokenFiles.ts';

/** Where the command writes its output (tests pass their own). */
export interface DeployCliIo {
  /** Standard output lines; default console.log. */
  out?: (line: string) => void;
  /** Error lines; default console.error. */
  err?: (line: string) => void;
}

/** Help of `care-relay deploy`. */
export const USAGE = `usage: care-relay deploy prepare [--out DIR] [--partner NAME]

Prepares, under DIR (default: the current folder, where docker-compose.yml is):
  keys/interface/, keys/app/          each service's private key (passphrase-protected),
                                      public key and the other's public key pinned in peers/
  secrets/interface/key-passphrase    the passphrase of keys/interface/private.asc
  secrets/interface/hmac-key          the interface's HMAC key for hashed identifiers
  secrets/interface/partners.json     one partner token (--partner, default demo-partner)
  secrets/interface/admin-tokens.json one admin token for the interface
  secrets/app/key-passphrase          the passphrase of keys/app/private.asc
  secrets/app/hmac-key                the app's HMAC key (a different one)
  secrets/app/tokens.json             reader, writer and admin tokens for the app

The passphrases are secrets of their own, outside the key folders that are mounted
at /keys. Folders are 0700, secret files 0600. The tokens are printed once; only
their sha256 is stored. It refuses to overwrite anything that exists.
This is a single-host demo layout: for real data generate each key on its own host
(docs/deploy.md, Key distribution) and add tokens with \`care-relay tokens\`.`;

const SERVICES = ['interface', 'app'] as const;

/** The options of `deploy prepare` (node:util parseArgs form; the runner declares the same to commander). */
export const OPTIONS = { out: { type: 'string' }, partner: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/** Runs `care-relay deploy <subcommand>`; resolves with the exit code. */
export async function run(argv: string[], io: DeployCliIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (e) {
    err(`care-relay deploy: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [sub] = parsed.positionals;
  if (parsed.values.help || sub === 'help') {
    out(USAGE);
    return 0;
  }
  if (sub !== 'prepare') {
    err(`care-relay deploy: ${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${USAGE}`);
    return 2;
  }
  const root = resolve(parsed.values.out ?? '.');
  const partner = parsed.values.partner ?? 'demo-partner';
  const keysDir = (s: string): string => join(root, 'keys', s);
  const secretsDir = (s: string): string => join(root, 'secrets', s);
  for (const s of SERVICES) {
    for (const path of [join(keysDir(s), 'private.asc'), secretsDir(s)]) {
      if (await exists(path)) {
        err(`care-relay deploy: ${path} already exists; prepare refuses to overwrite keys or secrets (move them away, or use --out)`);
        return 1;
      }
    }
  }

  try {
    const passphrases = { interface: randomBytes(32).toString('base64url'), app: randomBytes(32).toString('base64url') };
    const [iface, app] = await Promise.all(SERVICES.map((service) => generateServiceKey({ service, passphrase: passphrases[service] })));
    const keys = { interface: iface!, app: app! };
    await mkdir(join(root, 'secrets'), { recursive: true, mode: 0o700 });
    await chmod(join(root, 'secrets'), 0o700);
    for (const s of SERVICES) {
      const peer = s === 'interface' ? 'app' : 'interface';
      await writeServiceKeyFolder({ dir: keysDir(s), privateKey: keys[s].privateKey, publicKey: keys[s].publicKey, peers: [{ name: peer, publicKey: keys[peer].publicKey }] });
      await mkdir(secretsDir(s), { recursive: true, mode: 0o700 });
      await writePrivateKeyFile(join(secretsDir(s), 'key-passphrase'), `${passphrases[s]}\n`);
      await writePrivateKeyFile(join(secretsDir(s), 'hmac-key'), `${randomBytes(48).toString('base64url')}\n`);
    }
    const tokens: Array<[string, string, string]> = [
      ['interface', `partner "${partner}"`, await addToken(join(secretsDir('interface'), 'partners.json'), 'partner', { name: partner })],
      ['interface', 'admin "admin"', await addToken(join(secretsDir('interface'), 'admin-tokens.json'), 'admin', { name: 'admin' })],
      ['app', 'reader "reader"', await addToken(join(secretsDir('app'), 'tokens.json'), 'app', { name: 'reader', roles: ['reader'] })],
      ['app', 'writer "writer"', await addToken(join(secretsDir('app'), 'tokens.json'), 'app', { name: 'writer', roles: ['writer'] })],
      ['app', 'admin "admin"', await addToken(join(secretsDir('app'), 'tokens.json'), 'app', { name: 'admin', roles: ['admin'] })],
    ];
    for (const s of SERVICES) out(`${join('keys', s).padEnd(16)} ${keys[s].fingerprint}`);
    out(`secrets          ${SERVICES.map((s) => join('secrets', s)).join(', ')} (key passphrase, HMAC key, tokens; 0600)`);
    out('');
    out('Bearer tokens, shown only this once (only their sha256 is stored):');
    for (const [service, what, token] of tokens) out(`  ${service.padEnd(10)} ${what.padEnd(22)} ${token}`);
    out('');
    out('Next: docker compose up --build -d');
    return 0;
  } catch (e) {
    err(`care-relay deploy: ${(e as Error).message}`);
    return 1;
  }
}
