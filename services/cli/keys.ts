// `care-relay keys`: create, inspect and rotate the OpenPGP keys of the two services.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { parseArgs } from 'node:util';
import { KeyError } from '../core/keys/errors.ts';
import { SERVICE_NAME_PATTERN, generateServiceKey } from '../core/keys/generate.ts';
import { ensureKeyDir, exists, writePrivateKeyFile, writePublicKeyFile, writeServiceKeyFolder } from '../core/keys/files.ts';
import { fingerprintOf, keyStatus } from '../core/keys/keyring.ts';
import { checkPrivateKeyFileMode, ownKeyFingerprints, readKeyFile, readPrivateKeyFile, readPrivateKeyFileLocked, readPublicKeyFile } from '../core/keys/load.ts';

/** Environment variable holding the passphrase for new private keys. */
const PASSPHRASE_ENV = 'CARE_RELAY_KEY_PASSPHRASE';
const SERVICES = ['app', 'interface'] as const;

class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;
/** One `keys` subcommand. */
export interface Command {
  usage: string;
  options: Record<string, { type: 'string' | 'boolean' }>;
  run(values: Values, positionals: string[]): Promise<number>;
}

const HELP = {
  type: 'boolean',
} as const;

/** Help of `care-relay keys`. */
export const MAIN_USAGE = `usage: care-relay keys <subcommand> [options]

subcommands:
  init         create dev keys for both services (keys/app, keys/interface)
  generate     create one service's key (on the host that will use it)
  add-peer     pin a peer's public key (copies it into peers/)
  fingerprint  print the fingerprint of a key file
  rotate       rotate a service's key in two steps (--stage, --promote), keeping the old one to decrypt

Run \`care-relay keys <subcommand> --help\` for details.`;

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function requireService(values: Values): string {
  const service = str(values, 'service');
  if (service === undefined) throw new UsageError('--service is required');
  if (!SERVICE_NAME_PATTERN.test(service)) throw new UsageError(`--service must be a lower-case name like "app" (${SERVICE_NAME_PATTERN})`);
  return service;
}

/** The passphrase for new keys: --passphrase-file, else the environment; never printed. */
async function passphraseFrom(values: Values): Promise<string> {
  const file = str(values, 'passphrase-file');
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new KeyError('CR_KEY_UNREADABLE', `${file}: cannot read the passphrase file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
    }
    const passphrase = text.replace(/\r?\n$/, '');
    if (passphrase === '') throw new KeyError('CR_KEY_PASSPHRASE_MISSING', `${file}: the passphrase file is empty`);
    return passphrase;
  }
  const env = process.env[PASSPHRASE_ENV];
  if (env !== undefined && env !== '') return env;
  throw new KeyError('CR_KEY_PASSPHRASE_MISSING', `no passphrase: set ${PASSPHRASE_ENV} or pass --passphrase-file FILE`);
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

const init: Command = {
  usage: `usage: care-relay keys init [--dir DIR] [--force]

Creates development keys for both services under DIR (default: keys):
  DIR/app/        private.asc, public.asc, peers/interface.asc
  DIR/interface/  private.asc, public.asc, peers/app.asc
Private keys are passphrase-protected: with ${PASSPHRASE_ENV} set, that passphrase;
otherwise a random one per service, written to DIR/<service>/passphrase (mode 0600).
Refuses to replace existing keys unless --force (which also removes older
private-*.asc keys and pinned peers in those two folders).
For production, generate each key on its own host: care-relay keys generate.`,
  options: { dir: { type: 'string' }, force: { type: 'boolean' } },
  async run(values) {
    const root = str(values, 'dir') ?? 'keys';
    const force = values.force === true;
    if (!force) {
      for (const service of SERVICES) {
        const path = join(root, service, 'private.asc');
        if (await exists(path)) throw new KeyError('CR_KEY_EXISTS', `${path}: already exists; use --force to replace both key sets`);
      }
    }
    const envPassphrase = process.env[PASSPHRASE_ENV];
    const passphrases = Object.fromEntries(
      SERVICES.map((s) => [s, envPassphrase !== undefined && envPassphrase !== '' ? envPassphrase : randomBytes(24).toString('base64url')]),
    ) as Record<(typeof SERVICES)[number], string>;
    const generated = await Promise.all(SERVICES.map((service) => generateServiceKey({ service, passphrase: passphrases[service] })));
    const keys = { app: generated[0]!, interface: generated[1]! };
    for (const service of SERVICES) {
      const dir = join(root, service);
      if (force) await removeKeyFiles(dir);
      const other = service === 'app' ? 'interface' : 'app';
      await writeServiceKeyFolder({
        dir,
        privateKey: keys[service].privateKey,
        publicKey: keys[service].publicKey,
        peers: [{ name: other, publicKey: keys[other].publicKey }],
        overwrite: force,
      });
      if (envPassphrase === undefined || envPassphrase === '') {
        await writePrivateKeyFile(join(dir, 'passphrase'), `${passphrases[service]}\n`, { overwrite: true });
      }
    }
    for (const service of SERVICES) console.log(`${join(root, service).padEnd(24)} ${keys[service].fingerprint}  ${keys[service].userId}`);
    if (envPassphrase === undefined || envPassphrase === '') {
      console.log(`passphrases: ${SERVICES.map((s) => join(root, s, 'passphrase')).join(', ')} (mode 0600, git-ignored); give each service its own as a *_FILE secret`);
    } else {
      console.log(`passphrase: from ${PASSPHRASE_ENV}`);
    }
    return 0;
  },
};

/** Removes what `init --force` replaces: own keys, pinned peers, the passphrase file. */
async function removeKeyFiles(dir: string): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (/^private(-.*)?\.asc$/.test(name) || name === 'public.asc' || name === 'passphrase') await rm(join(dir, name), { force: true });
  }
  let peers: string[] = [];
  try {
    peers = await readdir(join(dir, 'peers'));
  } catch {
    return;
  }
  for (const name of peers) if (name.endsWith('.asc')) await rm(join(dir, 'peers', name), { force: true });
}

const generate: Command = {
  usage: `usage: care-relay keys generate --service NAME [--dir DIR] [--passphrase-file FILE] [--force]

Creates one service's key in DIR (its own key folder; default: keys/NAME):
private.asc (passphrase-protected, mode 0600) and public.asc. The passphrase comes
from --passphrase-file or ${PASSPHRASE_ENV}. Send public.asc to the peer, who pins
it with \`care-relay keys add-peer\`; pin the peer's public.asc here the same way.`,
  options: { service: { type: 'string' }, dir: { type: 'string' }, 'passphrase-file': { type: 'string' }, force: { type: 'boolean' } },
  async run(values) {
    const service = requireService(values);
    const dir = str(values, 'dir') ?? join('keys', service);
    const force = values.force === true;
    const privatePath = join(dir, 'private.asc');
    if (!force && (await exists(privatePath))) {
      throw new KeyError('CR_KEY_EXISTS', `${privatePath}: already exists; use \`keys rotate\` to replace it, or --force`);
    }
    const passphrase = await passphraseFrom(values);
    const key = await generateServiceKey({ service, passphrase });
    await ensureKeyDir(join(dir, 'peers'));
    await writePrivateKeyFile(privatePath, key.privateKey, { overwrite: force });
    await writePublicKeyFile(join(dir, 'public.asc'), key.publicKey, { overwrite: true });
    console.log(`${dir.padEnd(24)} ${key.fingerprint}  ${key.userId}`);
    console.log(`send ${join(dir, 'public.asc')} to the peer; on its host: care-relay keys add-peer --dir <its key folder> --expect-fingerprint ${key.fingerprint} FILE`);
    return 0;
  },
};

/** A fingerprint as people write it (spaces, lower case, `0x`) in the upper-case hex form keys use. */
function normalizeFingerprint(text: string): string {
  return text.replace(/\s+/g, '').replace(/^0x/i, '').toUpperCase();
}

const addPeer: Command = {
  usage: `usage: care-relay keys add-peer --dir DIR [--name NAME] [--expect-fingerprint FPR] FILE

Pins the peer public key in FILE for the service whose key folder is DIR: checks it
is one valid public key, prints its fingerprint (compare it with the peer's over a
second channel), and copies it to DIR/peers/NAME.asc. NAME is the peer's service name
(envelopes it signs must say \`from: NAME\`); it defaults to the file name (or the
e-mail local part of its user ID for public.asc). When NAME.asc already pins another
key (a rotation), the new one is added beside it as NAME-<last 16 hex digits>.asc;
both are accepted.
  --expect-fingerprint FPR  pin only when the key's primary fingerprint is FPR (the one
                            the peer gave you over a second channel; spaces allowed)
Refuses this service's own keys (private.asc, private-*.asc, public.asc).`,
  options: { dir: { type: 'string' }, name: { type: 'string' }, 'expect-fingerprint': { type: 'string' } },
  async run(values, positionals) {
    const dir = str(values, 'dir');
    if (dir === undefined) throw new UsageError('--dir is required (the service key folder, e.g. keys/app)');
    if (positionals.length !== 1) throw new UsageError('expected exactly one FILE');
    const expectedText = str(values, 'expect-fingerprint');
    const expected = expectedText === undefined ? undefined : normalizeFingerprint(expectedText);
    if (expected !== undefined && !/^[0-9A-F]{40}$|^[0-9A-F]{64}$/.test(expected)) {
      throw new UsageError('--expect-fingerprint: expected a full primary-key fingerprint (40 hex digits, spaces allowed)');
    }
    const file = positionals[0]!;
    const key = await readPublicKeyFile(file);
    const fingerprint = fingerprintOf(key);
    if (expected !== undefined && expected !== fingerprint) {
      throw new KeyError('CR_KEY_FINGERPRINT_MISMATCH', `${file}: key ${fingerprint} is not the expected ${expected}; not pinned`);
    }
    const ownFile = (await ownKeyFingerprints(dir)).get(fingerprint);
    if (ownFile !== undefined) {
      throw new KeyError('CR_KEY_OWN_KEY_AS_PEER', `${file}: key ${fingerprint} is this service's own key (${ownFile}); not pinned`);
    }
    const status = await keyStatus(key);
    if (status === 'revoked') throw new KeyError('CR_KEY_REVOKED', `${file}: key ${fingerprint} is revoked; not pinned`);
    if (status === 'expired') throw new KeyError('CR_KEY_EXPIRED', `${file}: key ${fingerprint} has expired; not pinned`);
    if (status !== 'valid') throw new KeyError('CR_KEY_NOT_A_KEY', `${file}: key ${fingerprint} has no valid self-signature; not pinned`);
    const name = str(values, 'name') ?? peerNameFor(file, key.getUserIDs());
    if (!SERVICE_NAME_PATTERN.test(name)) throw new UsageError(`peer name "${name}" must match ${SERVICE_NAME_PATTERN}; pass --name`);
    const peersDir = join(dir, 'peers');
    await ensureKeyDir(peersDir);
    let target = join(peersDir, `${name}.asc`);
    if (await exists(target)) {
      const pinned = await readKeyFile(target);
      if (fingerprintOf(pinned) === fingerprint) {
        console.log(`${fingerprint} is already pinned in ${target}`);
        return 0;
      }
      target = join(peersDir, `${name}-${fingerprint.slice(-16)}.asc`);
    }
    await writePublicKeyFile(target, key.armor(), { overwrite: true });
    console.log(`pinned ${fingerprint}  ${key.getUserIDs().join(', ')}  in ${target}`);
    if (expected === undefined) console.log('compare this fingerprint with the one the peer printed (or pass --expect-fingerprint); restart the service to load it');
    else console.log('fingerprint matches the expected one; restart the service to load it');
    return 0;
  },
};

function peerNameFor(file: string, userIds: string[]): string {
  const base = basename(file).replace(/\.(asc|pub|gpg|key)$/i, '');
  if (SERVICE_NAME_PATTERN.test(base) && !['public', 'private', 'key'].includes(base)) return base;
  for (const id of userIds) {
    const local = /<([a-z][a-z0-9-]{0,31})@/.exec(id)?.[1];
    if (local) return local;
  }
  throw new UsageError('cannot derive a peer name from the file name or user ID; pass --name');
}

const fingerprint: Command = {
  usage: `usage: care-relay keys fingerprint FILE

Prints the primary-key fingerprint of the key in FILE (public or private; a private
key is not decrypted), whether it is public or private, its user IDs, and its status.`,
  options: {},
  async run(_values, positionals) {
    if (positionals.length !== 1) throw new UsageError('expected exactly one FILE');
    const key = await readKeyFile(positionals[0]!);
    if (key.isPrivate()) await checkPrivateKeyFileMode(positionals[0]!);
    const status = await keyStatus(key);
    console.log(`${fingerprintOf(key)}  ${key.isPrivate() ? 'private' : 'public'}  ${status}  created ${key.getCreationTime().toISOString()}  ${key.getUserIDs().join(', ')}`);
    return 0;
  },
};

const STAGED_PRIVATE = 'private-next.asc';
const STAGED_PUBLIC = 'public-next.asc';

async function archiveCurrent(dir: string): Promise<string> {
  let archived = join(dir, `private-${timestamp(new Date())}.asc`);
  if (await exists(archived)) archived = archived.replace(/\.asc$/, `-${randomBytes(3).toString('hex')}.asc`);
  await rename(join(dir, 'private.asc'), archived);
  return archived;
}

const rotate: Command = {
  usage: `usage: care-relay keys rotate --service NAME [--dir DIR] (--stage | --promote | --now) [--passphrase-file FILE]

Rotates the service's own key (DIR, default keys/NAME) without losing a message:
  --stage    create the new key as ${STAGED_PRIVATE} (and ${STAGED_PUBLIC}). Restart the
             service: it decrypts with both keys and still signs with the current one.
             Then send ${STAGED_PUBLIC} to the peer, which pins it with add-peer and
             restarts (it then encrypts to the new key, which this service can read).
  --promote  once the peer has pinned the new key: private.asc moves to
             private-<UTC timestamp>.asc (decrypt only), the staged key becomes
             private.asc and public.asc. Restart the service: it signs with the new key.
  --now      both steps at once, for a compromised key: messages the peer seals to the
             old key still decrypt, but the peer quarantines this service's messages
             until it has pinned the new key.
The passphrase comes from --passphrase-file or ${PASSPHRASE_ENV} (use the same one as the
old key, or give the service both: KEY_PASSPHRASE_FILE takes one passphrase per line). See docs/deploy.md, "Key rotation runbook".`,
  options: {
    service: { type: 'string' },
    dir: { type: 'string' },
    'passphrase-file': { type: 'string' },
    stage: { type: 'boolean' },
    promote: { type: 'boolean' },
    now: { type: 'boolean' },
  },
  async run(values) {
    const service = requireService(values);
    const dir = str(values, 'dir') ?? join('keys', service);
    const steps = (['stage', 'promote', 'now'] as const).filter((step) => values[step] === true);
    if (steps.length !== 1) throw new UsageError('expected exactly one of --stage, --promote or --now');
    const step = steps[0]!;
    const currentPath = join(dir, 'private.asc');
    const stagedPath = join(dir, STAGED_PRIVATE);
    const old = await readPrivateKeyFileLocked(currentPath);

    if (step === 'promote') {
      const staged = await readPrivateKeyFileLocked(stagedPath);
      const archived = await archiveCurrent(dir);
      await rename(stagedPath, currentPath);
      await writePublicKeyFile(join(dir, 'public.asc'), (staged as PrivateKey).toPublic().armor(), { overwrite: true });
      await rm(join(dir, STAGED_PUBLIC), { force: true });
      console.log(`old key ${fingerprintOf(old)} kept as ${archived} (decrypt only)`);
      console.log(`new key ${fingerprintOf(staged)} is now ${currentPath}: restart this service; it signs with the new key`);
      console.log(`after the queue retention period has passed, delete ${archived}, and the peer removes the old pin`);
      return 0;
    }

    const passphrase = await passphraseFrom(values);
    let samePassphrase = true;
    try {
      await readPrivateKeyFile(currentPath, passphrase);
    } catch {
      samePassphrase = false;
    }
    if (step === 'stage' && (await exists(stagedPath))) {
      throw new KeyError('CR_KEY_EXISTS', `${stagedPath}: a staged key already exists; promote it first, or remove it to stage another`);
    }
    const key = await generateServiceKey({ service, passphrase });
    const samePassphraseNote = 'note: the old key uses another passphrase; put both in the service\'s KEY_PASSPHRASE_FILE, one per line (tried in order), or it cannot load the old key';
    if (step === 'stage') {
      await writePrivateKeyFile(stagedPath, key.privateKey);
      await writePublicKeyFile(join(dir, STAGED_PUBLIC), key.publicKey, { overwrite: true });
      console.log(`staged new key ${key.fingerprint} in ${stagedPath} (decrypt only until promoted)`);
      if (!samePassphrase) console.log(samePassphraseNote);
      console.log('1. restart this service: it now decrypts with both keys and still signs with the current one');
      console.log(`2. send ${join(dir, STAGED_PUBLIC)} to the peer; on its host: care-relay keys add-peer --dir <its key folder> --name ${service} --expect-fingerprint ${key.fingerprint} FILE, then restart it`);
      console.log(`3. care-relay keys rotate --service ${service} --dir ${dir} --promote, then restart this service`);
      return 0;
    }
    const archived = await archiveCurrent(dir);
    await writePrivateKeyFile(currentPath, key.privateKey);
    await writePublicKeyFile(join(dir, 'public.asc'), key.publicKey, { overwrite: true });
    console.log(`old key ${fingerprintOf(old)} kept as ${archived} (decrypt only)`);
    console.log(`new key ${key.fingerprint} in ${currentPath}`);
    if (!samePassphrase) console.log(samePassphraseNote);
    console.log(`next: send ${join(dir, 'public.asc')} to the peer to pin with add-peer; until it has, it quarantines this service's messages`);
    return 0;
  },
};

/** The subcommands of `care-relay keys`, each with its usage and options (node:util parseArgs form). */
export const commands: Record<string, Command> = { init, generate, 'add-peer': addPeer, fingerprint, rotate };

/** Runs `care-relay keys <subcommand> ...`; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? console.error : console.log)(MAIN_USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`care-relay keys: unknown subcommand "${name}"\n\n${MAIN_USAGE}`);
    return 2;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: { ...command.options, help: HELP, h: HELP }, allowPositionals: true, strict: true }));
  } catch (err) {
    console.error(`care-relay keys ${name}: ${(err as Error).message}\n\n${command.usage}`);
    return 2;
  }
  if (values.help === true || values.h === true) {
    console.log(command.usage);
    return 0;
  }
  if (positionals.length > 0 && !['add-peer', 'fingerprint'].includes(name)) {
    console.error(`care-relay keys ${name}: unexpected argument "${positionals[0]}"\n\n${command.usage}`);
    return 2;
  }
  try {
    return await command.run(values, positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`care-relay keys ${name}: ${err.message}\n\n${command.usage}`);
      return 2;
    }
    // One line, never a stack or key material; KeyError messages already name the file.
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    console.error(`care-relay keys ${name}: ${message}`);
    return 1;
  }
}
