// `care-relay dlq|quarantine list|show|redrive|purge QUEUE`: the messages a logical queue has set
// aside, as metadata only (never a body), and the two actions on them: redrive (back to the queue,
// checked again by its consumer) and purge (delete). Actions ask for confirmation (or --yes),
// support --dry-run, --ids and --reason, show progress, and audit each message acted on.
import type { AuditLog } from '../core/audit/auditLog.ts';
import { openCliTrail } from './trail.ts';
import { inspectHeld, purgeHeld, redriveHeld, showHeld, type HeldActionResult, type HeldMessageInfo, type HoldRole, type ScanCoverage } from '../core/ops/index.ts';
import type { OpsConfig } from './config.ts';
import { CliError } from './errors.ts';
import { reportIncomplete } from './failure.ts';
import type { CliIo } from './io.ts';
import { logicalQueue, resolveFor, sqsClientFor } from './opsDeps.ts';
import { createProgress } from './progress.ts';

/** Options shared by the four subcommands. */
export interface HeldCommonOptions {
  /** Print JSON. */
  json?: boolean;
}

/** Options of redrive and purge. */
export interface HeldActOptions extends HeldCommonOptions {
  /** Envelope ids or SQS message ids (comma-separated values already split). */
  ids?: string[];
  /** Reason codes. */
  reason?: string[];
  /** Change nothing; list what would be done. */
  dryRun?: boolean;
  /** Do not ask for confirmation. */
  yes?: boolean;
  /** The audit trail to append to (default AUDIT_FILE). */
  audit?: string;
  /** Stop after this many messages looked at. */
  limit?: number;
}

const COLUMNS = ['envelope id', 'reason', 'signer', 'sent', 'first receive', 'last receive', 'receives'] as const;

function row(m: HeldMessageInfo): string[] {
  return [m.envelopeId ?? `(message ${m.messageId})`, m.reason, m.signer ?? '-', m.sentAt ?? '-', m.firstReceiveAt ?? '-', m.lastReceiveAt ?? '-', String(m.receiveCount)];
}

function table(rows: string[][]): string {
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

async function withDeps<T>(cfg: OpsConfig, queue: string, run: (deps: Awaited<ReturnType<typeof resolveFor>>) => Promise<T>): Promise<T> {
  const logical = logicalQueue(queue);
  const client = sqsClientFor(cfg);
  try {
    return await run(await resolveFor(client, cfg, [logical]));
  } finally {
    client.destroy();
  }
}

/** Why a read ended short, for an operator: what could not be reached and why. */
export function incompleteMessage(what: string, c: ScanCoverage): string {
  return `${what}: looked at ${c.scanned} of about ${c.heldAtStart} message(s) held at the start; the rest could not be reached and were left as they are (on a FIFO queue, messages behind others of their group that stay in place; or messages hidden by another reader)`;
}

/** `list QUEUE`: the held messages, oldest first; exit 1 when some could not be reached. */
export async function listCommand(cfg: OpsConfig, io: CliIo, role: HoldRole, queue: string, options: HeldCommonOptions & { limit?: number }): Promise<number> {
  const read = await withDeps(cfg, queue, (deps) => inspectHeld(deps, { queue, role, ...(options.limit === undefined ? {} : { limit: options.limit }) }));
  const held = read.messages;
  if (options.json) {
    const { messages, ...coverage } = read;
    io.stdout(`${JSON.stringify({ queue, role, messages, ...coverage }, null, 2)}\n`);
  } else io.stdout(held.length === 0 ? (read.partial ? '' : `the ${role} of ${queue} is empty\n`) : table(held.map(row)));
  if (!read.partial) return 0;
  reportIncomplete(io, options.json, incompleteMessage(`${role} list ${queue}`, read));
  return 1;
}

/** `show QUEUE ID`: one held message's metadata. */
export async function showCommand(cfg: OpsConfig, io: CliIo, role: HoldRole, queue: string, id: string, options: HeldCommonOptions): Promise<number> {
  const m = await withDeps(cfg, queue, (deps) => showHeld(deps, { queue, role, id }));
  if (options.json) io.stdout(`${JSON.stringify(m, null, 2)}\n`);
  else {
    const fields: [string, string][] = [
      ['queue', `${m.queue} (${m.role})`],
      ['envelope id', m.envelopeId ?? '-'],
      ['SQS message id', m.messageId],
      ['reason', m.reason],
      ['signer', m.signer ?? '-'],
      ['sent', m.sentAt ?? '-'],
      ['first receive', m.firstReceiveAt ?? '-'],
      ['last receive', m.lastReceiveAt ?? '-'],
      ['receives', String(m.receiveCount)],
      ...(m.groupId ? [['FIFO group', m.groupId] as [string, string]] : []),
    ];
    io.stdout(fields.map(([k, v]) => `${k.padEnd(15)} ${v}`).join('\n') + '\n');
  }
  return 0;
}

/** Asks for confirmation on a terminal; refuses without one (unless --yes or --dry-run). */
async function confirm(io: CliIo, question: string): Promise<void> {
  if (!io.stdinIsTTY) throw new CliError('CR_CLI_CONFIRMATION_REQUIRED', 'not a terminal: pass --yes to confirm (or --dry-run to see what would be done)');
  const answer = (await io.ask(`${question} [y/N] `)).trim().toLowerCase();
  if (answer !== 'y' && answer !== 'yes') throw new CliError('CR_CLI_CONFIRMATION_DECLINED', 'not confirmed: nothing was changed');
}

/** `redrive QUEUE` / `purge QUEUE`: after a confirmation, only on the messages its preview listed. */
export async function actCommand(cfg: OpsConfig, io: CliIo, role: HoldRole, action: 'redrive' | 'purge', queue: string, options: HeldActOptions): Promise<number> {
  const dryRun = options.dryRun ?? false;
  const auditFile = options.audit ?? cfg.env.AUDIT_FILE;
  if (!dryRun && !auditFile) throw new CliError('CR_CLI_USAGE', '--audit FILE is required (or AUDIT_FILE): every message acted on is audited; give the CLI its own trail, never a running service\'s');
  const selection = { ...(options.ids ? { ids: options.ids } : {}), ...(options.reason ? { reasons: options.reason } : {}), ...(options.limit === undefined ? {} : { limit: options.limit }) };
  return withDeps(cfg, queue, async (deps) => {
    const base = { queue, role, actor: cfg.actor, ...selection };
    const act = action === 'redrive' ? redriveHeld : purgeHeld;
    let confirmed: string[] | undefined;
    if (!dryRun && !options.yes) {
      const preview = await act(deps, { ...base, dryRun: true, audit: { record: async () => undefined } });
      if (preview.items.length === 0) {
        // Nothing was done and nothing will be: say so plainly (not as a dry run).
        const result: HeldActionResult = { ...preview, dryRun: false };
        report(io, result, options.json);
        return finish(io, result, options.json);
      }
      const what = action === 'redrive' ? `back to ${queue}` : 'for good';
      const short = preview.partial ? ` (only ${preview.scanned} of about ${preview.heldAtStart} held messages could be looked at)` : '';
      await confirm(io, `${action} ${preview.items.length} message(s) from the ${role} of ${queue} ${what}${short}?`);
      // Exactly what was confirmed: a message that arrived while the prompt waited is left alone.
      confirmed = preview.items.map((i) => i.messageId);
    }
    const audit: AuditLog | undefined = dryRun ? undefined : await openCliTrail(io.stderr, auditFile!, 'cli', cfg.actor);
    const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY, label: `${action} ${queue} ${role}`, columns: io.columns });
    let result: HeldActionResult;
    try {
      result = await act(deps, {
        ...base,
        dryRun,
        ...(confirmed ? { messageIds: confirmed } : {}),
        audit: audit ?? { record: async () => undefined },
        onProgress: (p) => progress.update(p.scanned, p.total, `matched ${p.matched}, ${dryRun ? 'would' : 'done'} ${p.done}, failed ${p.failed}`),
      });
    } finally {
      await audit?.close();
    }
    const failed = result.items.filter((i) => i.outcome === 'failed').length;
    progress.finish(result.scanned, result.scanned, `matched ${result.items.length}, failed ${failed}`);
    report(io, result, options.json, confirmed?.length);
    return Math.max(failed > 0 ? 1 : 0, finish(io, result, options.json));
  });
}

/** Exit code of a run as far as its reach goes: 1 (with a CR_CLI_SCAN_INCOMPLETE line) when it ended short. */
function finish(io: CliIo, r: HeldActionResult, json: boolean | undefined): number {
  if (!r.partial) return 0;
  reportIncomplete(io, json, incompleteMessage(`${r.action} ${r.queue} ${r.role}`, r));
  return 1;
}

function report(io: CliIo, r: HeldActionResult, json: boolean | undefined, confirmed?: number): void {
  if (json) {
    io.stdout(`${JSON.stringify(confirmed === undefined ? r : { ...r, confirmed }, null, 2)}\n`);
    return;
  }
  const verb = r.action === 'redrive' ? 'redriven' : 'purged';
  const lines = r.items.map((i) => `${i.outcome === 'would' ? `would be ${verb}` : i.outcome === 'done' ? verb : `failed (${i.code})`}  ${i.envelopeId ?? '-'}  ${i.messageId}  ${i.reason}`);
  const done = r.items.filter((i) => i.outcome !== 'failed').length;
  const failed = r.items.length - done;
  if (!r.dryRun && r.items.length === 0 && confirmed === undefined && r.skippedNewer === 0) {
    lines.push(`${r.action} ${r.queue} ${r.role}: none of the ${r.scanned} message(s) looked at matches; nothing ${verb}`);
  } else {
    const extra = [
      ...(r.skippedNewer > 0 ? [`${r.skippedNewer} skipped as newer than the ${confirmed === undefined ? 'run' : 'confirmation'}`] : []),
      ...(confirmed !== undefined && confirmed > r.items.length ? [`${confirmed - r.items.length} of the ${confirmed} confirmed no longer found`] : []),
    ];
    lines.push(`${r.dryRun ? 'dry run: ' : ''}${r.action} ${r.queue} ${r.role}: ${done} ${r.dryRun ? `would be ${verb}` : verb}, ${failed} failed, ${[...extra, `${r.scanned} looked at`].join(', ')}`);
  }
  if (r.stoppedAtLimit && r.scanned < r.heldAtStart) lines.push(`stopped at the limit of messages looked at (--limit): about ${Math.max(0, r.heldAtStart - r.scanned)} more held; run again to go on`);
  io.stdout(`${lines.join('\n')}\n`);
}
