// `care-relay audit verify TRAIL...`: checks an audit trail (or a run of its segments): hash chain and signed checkpoints.
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { PublicKey } from 'openpgp';
import { readCheckpointFile } from '../core/audit/checkpointStore.ts';
import { checkRun, ownMarks, type RunFile, type TrailMark } from '../core/audit/trailCheck.ts';
import { listClosedSegments, parseSegmentName, readFirstEntry, sortSegments, type ClosedSegment } from '../core/audit/segments.ts';
import { scanAuditFile } from '../core/audit/verify.ts';
import { parseEntryLine } from '../core/audit/chain.ts';
import { isRelayError } from '../core/errors/relayError.ts';
import { readPublicKeyFile } from '../core/keys/load.ts';
import type { SignedCheckpoint } from '../core/audit/checkpoint.ts';
import { readFile } from 'node:fs/promises';

const USAGE = [
  'usage: care-relay audit verify TRAIL... --key KEYS_DIR|PUBLIC_KEY_FILE [--checkpoints FILE]... [--witness PEER_AUDIT_FILE] [--service NAME]',
  '       care-relay audit verify TRAIL... --chain-only',
  '',
  'TRAIL is the trail file (AUDIT_FILE: its closed segments next to it are checked first, in seq order),',
  'or a run of segments: closed segment files and/or folders holding them (e.g. downloaded from the',
  'S3 archive), optionally followed by the open trail file. The run is checked as one chain from seq 1:',
  'a missing, reordered, cut or replaced segment, or a broken link between two, is named.',
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
      options: {
        key: { type: 'string', multiple: true },
        checkpoints: { type: 'string', multiple: true },
        witness: { type: 'string' },
        service: { type: 'string' },
        'chain-only': { type: 'boolean' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [sub, ...paths] = parsed.positionals;
  const { values } = parsed;
  if (sub !== 'verify' || paths.length === 0) {
    console.error(USAGE);
    return 2;
  }
  if (!values['chain-only'] && (values.key ?? []).length === 0) {
    console.error(`--key is required to check the signed checkpoints (or --chain-only)\n\n${USAGE}`);
    return 2;
  }
  try {
    const run = await resolveRun(paths);
    if ('reason' in run) {
      console.log(run.reason);
      return 1;
    }
    const line = values['chain-only'] ? await chainOnly(run) : await full(run, values);
    console.log(line.text);
    return line.ok ? 0 : 1;
  } catch (err) {
    if (!isRelayError(err)) throw err;
    console.error(`care-relay audit: ${err.message}`);
    return 1;
  }
}

type Line = { ok: boolean; text: string };

async function chainOnly(run: Run): Promise<Line> {
  const result = await checkRun(run.files, []);
  if (!result.ok) return { ok: false, text: result.message };
  return { ok: true, text: `ok: ${result.count} entries${segmentsText(run)}, head seq ${result.head.seq} hash ${result.head.hash} (chain only: truncation and rewrites are not checked)` };
}

async function full(run: Run, values: { key?: string[]; checkpoints?: string[]; witness?: string; service?: string }): Promise<Line> {
  const keys = await Promise.all((values.key ?? []).map(readKeyArg));
  const files = values.checkpoints ?? (run.open ? [`${run.open}.checkpoints`] : []);
  if (files.length === 0) return { ok: false, text: 'no trail file given, so no default checkpoint file: give --checkpoints FILE, or --chain-only to check the chain alone' };
  const entries: SignedCheckpoint[] = [];
  for (const cpFile of files) {
    const read = await readCheckpointFile(cpFile);
    if (!read.ok) return { ok: false, text: `checkpoint file ${cpFile} line ${read.line}: ${read.reason}` };
    if (!read.exists) return { ok: false, text: `no checkpoint file ${cpFile}: give --checkpoints FILE, or --chain-only to check the chain alone` };
    entries.push(...read.checkpoints);
  }
  const service = values.service ?? (await firstService(run)) ?? entries[0]?.checkpoint.service;
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
  const result = await checkRun(run.files, marks);
  if (!result.ok) return { ok: false, text: result.message };
  if (result.count > 0 && own.marks.length === 0) return { ok: false, text: `no signed checkpoint of ${service} in ${files.join(', ')}: truncation and rewrites cannot be ruled out` };
  const last = Math.max(0, ...own.marks.map((m) => m.checkpoint.seq));
  return {
    ok: true,
    text: `ok: ${result.count} entries${segmentsText(run)}, head seq ${result.head.seq} hash ${result.head.hash}; ${own.marks.length} signed checkpoints (last at seq ${last})${values.witness ? `, ${witnessed} witnessed` : ''}`,
  };
}

/** The files to check, in chain order: closed segments by seq, then the open trail (if given). */
interface Run {
  files: RunFile[];
  /** The open trail file, when one was given (its checkpoint file is the default). */
  open?: string;
}

function segmentsText(run: Run): string {
  const closed = run.files.filter((f) => f.range).length;
  return closed === 0 ? '' : ` in ${closed} closed segment${closed === 1 ? '' : 's'}${run.open ? ' and the open one' : ''}`;
}

/** Expands folders to the segments they hold, adds a lone trail file's closed segments, orders the segments by seq. */
async function resolveRun(paths: string[]): Promise<Run | { reason: string }> {
  const segments: ClosedSegment[] = [];
  const open: string[] = [];
  for (const path of paths) {
    const isDir = await stat(path).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (isDir) {
      const found = (await readdir(path)).map((name) => parseSegmentName(join(path, name))).filter((s) => s !== undefined);
      if (found.length === 0) return { reason: `${path}: no audit segment files (named <first seq>-<last seq>-<hash>.jsonl)` };
      segments.push(...found);
    } else {
      const range = parseSegmentName(path);
      if (range) segments.push(range);
      else open.push(path);
    }
  }
  if (open.length > 1) return { reason: `more than one trail file given (${open.join(', ')}): give one trail and the segments before it` };
  if (paths.length === 1 && open.length === 1) segments.push(...(await listClosedSegments(open[0]!)));
  sortSegments(segments);
  for (let i = 1; i < segments.length; i++) {
    if (segments[i]!.first === segments[i - 1]!.first) return { reason: `two segments begin at seq ${segments[i]!.first}: ${basename(segments[i - 1]!.path)} and ${basename(segments[i]!.path)} (two trails mixed?)` };
  }
  return { files: [...segments.map((s) => ({ path: s.path, range: s })), ...open.map((path) => ({ path }))], ...(open[0] ? { open: open[0] } : {}) };
}

/** A key folder (its public.asc) or a public key file. */
async function readKeyArg(path: string): Promise<PublicKey> {
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  return readPublicKeyFile(isDir ? join(path, 'public.asc') : path);
}

async function firstService(run: Run): Promise<string | undefined> {
  for (const file of run.files) {
    const entry = await readFirstEntry(file.path);
    if (entry) return entry.service;
  }
  return undefined;
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
