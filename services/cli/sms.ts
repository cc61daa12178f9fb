// `care-relay sms sweep`: redact historical SignalWire messages (media first, then the body).
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createProgress } from './progress.ts';
import type { AuditLog } from '../core/audit/auditLog.ts';
import { openCliTrail } from './trail.ts';
import { resolveFileSecrets } from '../core/config/env.ts';
import { createSignalWireClient } from '../app/sms/client.ts';
import { runSweep, SWEEP_ACTOR, type SweepState } from '../app/sms/sweep.ts';
import type { RedactionMode } from '../app/sms/types.ts';

/** Where the command reads its environment and writes its output (tests pass their own). */
export interface SmsCliIo {
  /** Environment (SIGNALWIRE_* and REDACTION_*). */
  env: Record<string, string | undefined>;
  /** Progress and errors. */
  stderr: (text: string) => void;
  /** The summary. */
  stdout: (text: string) => void;
  /** Standard error is a terminal: progress is a bar redrawn in place instead of a line per page. */
  stderrIsTTY?: boolean;
}

/** Help of `care-relay sms`. */
export const USAGE = `usage: care-relay sms sweep --audit FILE [--since DATE] [--until DATE] [--dry-run] [--mode redact|delete] [--state FILE] [--page-size N]

Walks every message sent in the range and redacts each terminal one that still has a body or
media: deletes every media item, confirms none is left, blanks the body, and in delete mode
deletes the message. Messages in progress (or \`sent\` within the grace period) are skipped.

  --since DATE     only messages sent on or after DATE (YYYY-MM-DD or RFC 3339)
  --until DATE     only messages sent on or before DATE (a bare date means the end of that day, UTC)
  --dry-run        change nothing; count what would be redacted
  --mode M         redact (blank the body, default REDACTION_MODE or redact) or delete
  --state FILE     save progress after each page to FILE, and resume from it when it exists
  --page-size N    messages per page (default 100)
  --audit FILE     the audit trail to append to (default AUDIT_FILE): one sms.redacted line per
                   redaction and an sms.sweep summary; required unless --dry-run. One writer per
                   file: give the sweep its own file, never the running app's trail.

environment: SIGNALWIRE_PROJECT_ID, SIGNALWIRE_API_TOKEN (or _FILE), SIGNALWIRE_SPACE_URL,
             REDACTION_SENT_GRACE_SECONDS (default 3600), SIGNALWIRE_ALLOW_INSECURE (loopback http only),
             AUDIT_FILE, HMAC_KEY (or _FILE; hashes sids in the audit lines as the app does)`;

const defaultIo: SmsCliIo = {
  env: process.env,
  stderr: (t) => process.stderr.write(t),
  stdout: (t) => process.stdout.write(t),
  stderrIsTTY: process.stderr.isTTY === true,
};

function parseDate(name: string, value: string | undefined, endOfDay: boolean): Date | undefined {
  if (value === undefined) return undefined;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const d = new Date(dateOnly ? `${value}T${endOfDay ? '23:59:59' : '00:00:00'}Z` : value);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${name}: expected a date (YYYY-MM-DD or RFC 3339), got "${value}"`);
  return d;
}

class UsageError extends Error {}

interface StateFile extends SweepState {
  /** The options the sweep was started with; a resume must use the same. */
  params: { since: string | null; until: string | null; mode: RedactionMode; dryRun: boolean };
}

async function loadState(file: string): Promise<StateFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const s = JSON.parse(text) as StateFile;
  if (s.v !== 1 || typeof s.counts !== 'object') throw new UsageError(`--state ${file}: not a sweep state file`);
  return s;
}

async function saveState(file: string, state: StateFile): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** The options of `sms sweep` (node:util parseArgs form; the runner declares the same to commander). */
export const OPTIONS = {
  since: { type: 'string' }, until: { type: 'string' }, 'dry-run': { type: 'boolean', default: false },
  mode: { type: 'string' }, state: { type: 'string' }, 'page-size': { type: 'string' }, audit: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `care-relay sms <subcommand>`; returns the exit code (0 done, 1 some failed, 2 usage). */
export async function run(argv: string[], io: SmsCliIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout(USAGE + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'sweep') {
    io.stderr(`care-relay sms: unknown subcommand "${sub}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await sweep(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`care-relay sms sweep: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function sweep(argv: string[], io: SmsCliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: OPTIONS,
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    io.stdout(USAGE + '\n');
    return 0;
  }
  const env = resolveFileSecrets(io.env, ['SIGNALWIRE_API_TOKEN', 'HMAC_KEY']);
  const mode = (values.mode ?? env.REDACTION_MODE ?? 'redact') as RedactionMode;
  if (mode !== 'redact' && mode !== 'delete') throw new UsageError(`--mode: expected redact or delete, got "${mode}"`);
  const since = parseDate('--since', values.since, false);
  const until = parseDate('--until', values.until, true);
  const pageSize = values['page-size'] === undefined ? 100 : Number(values['page-size']);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) throw new UsageError('--page-size: expected an integer from 1 to 1000');
  const graceText = env.REDACTION_SENT_GRACE_SECONDS ?? '3600';
  const grace = Number(graceText);
  if (!Number.isInteger(grace) || grace < 0) throw new UsageError(`REDACTION_SENT_GRACE_SECONDS: expected a whole number of seconds, got "${graceText}"`);
  for (const name of ['SIGNALWIRE_PROJECT_ID', 'SIGNALWIRE_API_TOKEN', 'SIGNALWIRE_SPACE_URL']) {
    if (!env[name]) throw new UsageError(`${name}: required`);
  }
  const dryRun = values['dry-run'] ?? false;
  const auditFile = values.audit ?? env.AUDIT_FILE;
  if (!dryRun && !auditFile) throw new UsageError('--audit FILE is required (or AUDIT_FILE): every redaction and the summary are audited');
  const params = { since: since?.toISOString() ?? null, until: until?.toISOString() ?? null, mode, dryRun };

  let resume: StateFile | undefined;
  if (values.state) {
    resume = await loadState(values.state);
    if (resume && JSON.stringify(resume.params) !== JSON.stringify(params)) {
      throw new UsageError(`--state ${values.state}: saved for other options (${JSON.stringify(resume.params)}); use the same options or another file`);
    }
    if (resume?.done) {
      io.stderr('sweep already finished according to the state file\n');
    } else if (resume) {
      io.stderr(`resuming after ${resume.pages} page(s), ${resume.counts.scanned} message(s) scanned\n`);
    }
  }

  let api;
  try {
    api = createSignalWireClient({
      projectId: env.SIGNALWIRE_PROJECT_ID!, apiToken: env.SIGNALWIRE_API_TOKEN!, spaceUrl: env.SIGNALWIRE_SPACE_URL!,
      allowInsecure: ['1', 'true', 'yes'].includes(env.SIGNALWIRE_ALLOW_INSECURE ?? ''),
    });
  } catch (err) {
    throw new UsageError(`SIGNALWIRE_SPACE_URL: ${(err as Error).message}`);
  }
  const audit: AuditLog | undefined = auditFile ? await openCliTrail(io.stderr, auditFile, 'app', SWEEP_ACTOR) : undefined;
  let last: SweepState | undefined;
  const bar = io.stderrIsTTY ? createProgress({ write: io.stderr, tty: true, label: dryRun ? 'sms sweep (dry run)' : 'sms sweep', columns: process.stderr.columns ?? 80 }) : undefined;
  const sweepOptions = {
    mode, dryRun, pageSize, sentGraceSeconds: grace,
    ...(since ? { since } : {}), ...(until ? { until } : {}), ...(resume ? { resume } : {}),
    onPage: async (s: SweepState) => {
      const c = s.counts;
      const note = `page ${s.pages}: scanned ${c.scanned}, ${dryRun ? 'would redact' : 'redacted'} ${c.redacted}, media ${c.mediaDeleted}, skipped ${c.skippedInProgress}, failed ${c.failed}`;
      // The total is unknown until the last page: the bar shows what was scanned so far.
      if (bar) bar.update(c.scanned, 0, note);
      else io.stderr(`${note}\n`);
      last = s;
      if (values.state) await saveState(values.state, { ...s, params });
    },
  };
  // Sids are hashed with the app's HMAC_KEY when given, so the sweep's audit lines correlate with the app's.
  const deps = { api, hmacKey: env.HMAC_KEY || randomBytes(32).toString('hex'), ...(audit ? { audit } : {}) };
  let state: SweepState;
  try {
    state = await sweepAudited(audit, { dryRun, mode }, () => runSweep(deps, sweepOptions), () => last);
  } finally {
    if (bar && last) bar.finish(last.counts.scanned, 0, `page ${last.pages}`);
    await audit?.close();
  }
  const c = state.counts;
  io.stdout(
    [
      `${dryRun ? 'dry run: ' : ''}sweep ${state.done ? 'complete' : 'stopped'} (${mode})`,
      `scanned:             ${c.scanned}`,
      `${dryRun ? 'would redact:' : 'redacted:    '}        ${c.redacted}`,
      `media deleted:       ${c.mediaDeleted}${dryRun ? ' (would be)' : ''}`,
      `already clean:       ${c.alreadyClean}`,
      `skipped in progress: ${c.skippedInProgress}`,
      `failed:              ${c.failed}`,
    ].join('\n') + '\n',
  );
  return c.failed > 0 ? 1 : 0;
}

/** Runs a sweep and appends its `sms.sweep` summary to the trail, also when it stops on an error. */
async function sweepAudited(audit: AuditLog | undefined, params: { dryRun: boolean; mode: RedactionMode }, sweepRun: () => Promise<SweepState>, lastState: () => SweepState | undefined): Promise<SweepState> {
  const summary = async (state: SweepState | undefined, error?: string) => {
    const c = state?.counts;
    await audit?.record({
      action: 'sms.sweep', actor: SWEEP_ACTOR, resourceType: 'sms', outcome: state?.done && c?.failed === 0 && !error ? 'success' : 'failure',
      details: { ...c, pages: state?.pages ?? 0, done: state?.done ?? false, dryRun: params.dryRun, mode: params.mode, ...(error ? { error } : {}) },
    });
  };
  let state: SweepState;
  try {
    state = await sweepRun();
  } catch (err) {
    await summary(lastState(), err instanceof Error ? err.name : 'Error');
    throw err;
  }
  await summary(state);
  return state;
}
