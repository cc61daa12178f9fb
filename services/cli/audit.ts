// `care-relay audit verify FILE`: checks an audit trail's hash chain and its signed checkpoints.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { PublicKey } from 'openpgp';
import { readCheckpointFile } from '../core/audit/checkpointStore.ts';
import { checkTrail, ownMarks, type TrailMark } from '../core/audit/trailCheck.ts';
import { scanAuditFile } from '../core/audit/verify.ts';
import { parseEntryLine } from '../core/audit/chain.ts';
import { isRelayError } from '../core/errors/relayError.ts';
import { readPublicKeyFile } from '../core/keys/load.ts';
import type { SignedCheckpoint } from '../core/audit/checkpoint.ts';
import { readFile } from 'node:fs/promises';

/** Help of `care-relay audit`. */
export const USAGE = [
  'usage: care-relay audit verify FILE --key KEYS_DIR|PUBLIC_KEY_FILE [--checkpoints FILE]... [--witness PEER_AUDIT_FILE] [--service NAME]',
  '       care-relay audit verify FILE --chain-only',
  '',
  'Checks every line of a hash-chained audit trail (sequence, chain, hashes), then the trail against',
  'its checkpoints: each must be signed by the service\'s key (--key: its key folder, whose public.asc',
  'is used, or a public key file; repeat it for keys rotated out), the line at each checkpoint\'s seq',
  'must have the signed head hash (else the trail was rewritten), and the trail must reach the last',
  'checkpoint (else it was truncated). Checkpoints are read from FILE.checkpoints unless --checkpoints',
  'is given (repeatable: e.g. the copies downloaded from S3). --witness adds the checkpoints the peer',
  'service witnessed (its audit.witnessed lines). --chain-only checks the chain alone.',
  'Prints "ok: N entries, head seq S hash H, ..." and exits 0, or one line naming the problem and exits 1.',
].join('\n');

/** The options of `audit verify` (node:util parseArgs form; the runner declares the same to commander). */
export const OPTIONS = {
  key: { type: 'string', multiple: true },
  checkpoints: { type: 'string', multiple: true },
  witness: { type: 'string' },
  service: { type: 'string' },
  'chain-only': { type: 'boolean' },
} as const;

/** Runs `care-relay audit <subcommand>`; returns the process exit code (0 ok, 1 bad trail or unreadable, 2 usage). */
export async function run(argv: string[]): Promise<number> {
  if (['--help', '-h', 'help'].includes(argv[0] ?? '')) {
    console.log(USAGE);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: OPTIONS,
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [sub, file, ...extra] = parsed.positionals;
  const { values } = parsed;
  if (sub !== 'verify' || file === undefined || extra.length > 0) {
    console.error(USAGE);
    return 2;
  }
  if (!values['chain-only'] && (values.key ?? []).length === 0) {
    console.error(`--key is required to check the signed checkpoints (or --chain-only)\n\n${USAGE}`);
    return 2;
  }
  try {
    const line = values['chain-only'] ? await chainOnly(file) : await full(file, values);
    console.log(line.text);
    return line.ok ? 0 : 1;
  } catch (err) {
    if (!isRelayError(err)) throw err;
    console.error(`care-relay audit: ${err.message}`);
    return 1;
  }
}

type Line = { ok: boolean; text: string };

async function chainOnly(file: string): Promise<Line> {
  const scan = await scanAuditFile(file);
  if (!scan.ok) return { ok: false, text: `line ${scan.line}: ${scan.reason}` };
  return { ok: true, text: `ok: ${scan.count} entries, head seq ${scan.head.seq} hash ${scan.head.hash} (chain only: truncation and rewrites are not checked)` };
}

async function full(file: string, values: { key?: string[]; checkpoints?: string[]; witness?: string; service?: string }): Promise<Line> {
  const keys = await Promise.all((values.key ?? []).map(readKeyArg));
  const files = values.checkpoints ?? [`${file}.checkpoints`];
  const entries: SignedCheckpoint[] = [];
  for (const cpFile of files) {
    const read = await readCheckpointFile(cpFile);
    if (!read.ok) return { ok: false, text: `checkpoint file ${cpFile} line ${read.line}: ${read.reason}` };
    if (!read.exists) return { ok: false, text: `no checkpoint file ${cpFile}: give --checkpoints FILE, or --chain-only to check the chain alone` };
    entries.push(...read.checkpoints);
  }
  const service = values.service ?? (await firstService(file)) ?? entries[0]?.checkpoint.service;
  if (service === undefined) return { ok: false, text: 'empty trail and no checkpoint: nothing to verify against' };
  const own = await ownMarks(entries, service, keys, { all: true });
  if ('reason' in own) return { ok: false, text: own.reason };
  const marks: TrailMark[] = [...own.marks];
  let witnessed = 0;
  if (values.witness) {
    const peer = await witnessedMarks(values.witness, service);
    if ('reason' in peer) return { ok: false, text: peer.reason };
    marks.push(...peer.marks);
    witnessed = peer.marks.length;
  }
  const result = await checkTrail(file, marks);
  if (!result.ok) return { ok: false, text: result.message };
  if (result.count > 0 && own.marks.length === 0) return { ok: false, text: `no signed checkpoint of ${service} in ${files.join(', ')}: truncation and rewrites cannot be ruled out` };
  const last = Math.max(0, ...own.marks.map((m) => m.checkpoint.seq));
  return {
    ok: true,
    text: `ok: ${result.count} entries, head seq ${result.head.seq} hash ${result.head.hash}; ${own.marks.length} signed checkpoints (last at seq ${last})${values.witness ? `, ${witnessed} witnessed` : ''}`,
  };
}

/** A key folder (its public.asc) or a public key file. */
async function readKeyArg(path: string): Promise<PublicKey> {
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  return readPublicKeyFile(isDir ? join(path, 'public.asc') : path);
}

async function firstService(file: string): Promise<string | undefined> {
  let service: string | undefined;
  await scanAuditFile(file, (entry) => {
    service ??= entry.service;
    return undefined;
  });
  return service;
}

/** The checkpoints of `service` that the peer's trail records as witnessed; the peer's chain must hold. */
async function witnessedMarks(peerFile: string, service: string): Promise<{ marks: TrailMark[] } | { reason: string }> {
  const scan = await scanAuditFile(peerFile);
  if (!scan.ok) return { reason: `witness trail ${peerFile} line ${scan.line}: ${scan.reason}` };
  const marks: TrailMark[] = [];
  for (const text of (await readFile(peerFile, 'utf8')).split('\n')) {
    if (!text.includes('"audit.witnessed"')) continue;
    const parsed = parseEntryLine(text);
    if ('reason' in parsed || parsed.entry.action !== 'audit.witnessed') continue;
    const d = parsed.entry.details ?? {};
    if (d.service !== service || typeof d.seq !== 'number' || typeof d.headHash !== 'string' || typeof d.at !== 'string') continue;
    marks.push({ checkpoint: { service, seq: d.seq, headHash: d.headHash, at: d.at }, source: `witnessed by ${parsed.entry.service}` });
  }
  return { marks };
}
