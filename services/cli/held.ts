// `care-relay dlq|quarantine list|show|redrive|purge QUEUE`: the messages a logical queue has set
// aside, as metadata only (never a body), and the two actions on them: redrive (back to the queue,
// checked again by its consumer) and purge (delete). Actions ask for confirmation (or --yes),
// support --dry-run, --ids and --reason, show progress, and audit each message acted on.
import type { AuditLog } from '../core/audit/auditLog.ts';
import { openCliTrail } from './trail.ts';
import { listHeld, purgeHeld, redriveHeld, showHeld, type HeldActionResult, type HeldMessageInfo, type HoldRole } from '../core/ops/index.ts';
import type { OpsConfig } from './config.ts';
import { CliError } from './errors.ts';
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

/** `list QUEUE`: the held messages, oldest first. */
export async function listCommand(cfg: OpsConfig, io: CliIo, role: HoldRole, queue: string, options: HeldCommonOptions & { limit?: number }): Promise<number> {
  const held = await withDeps(cfg, queue, (deps) => listHeld(deps, { queue, role, ...(options.limit === undefined ? {} : { limit: options.limit }) }));
  if (options.json) io.stdout(`${JSON.stringify({ queue, role, messages: held }, null, 2)}\n`);
  else io.stdout(held.length === 0 ? `the ${role} of ${queue} is empty\n` : table(held.map(row)));
  return 0;
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

/** `redrive QUEUE` / `purge QUEUE`. */
export async function actCommand(cfg: OpsConfig, io: CliIo, role: HoldRole, action: 'redrive' | 'purge', queue: string, options: HeldActOptions): Promise<number> {
  const dryRun = options.dryRun ?? false;
  const auditFile = options.audit ?? cfg.env.AUDIT_FILE;
  if (!dryRun && !auditFile) throw new CliError('CR_CLI_USAGE', '--audit FILE is required (or AUDIT_FILE): every message acted on is audited; give the CLI its own trail, never a running service\'s');
  const selection = { ...(options.ids ? { ids: options.ids } : {}), ...(options.reason ? { reasons: options.reason } : {}), ...(options.limit === undefined ? {} : { limit: options.limit }) };
  return withDeps(cfg, queue, async (deps) => {
    const base = { queue, role, actor: cfg.actor, ...selection };
    const act = action === 'redrive' ? redriveHeld : purgeHeld;
    if (!dryRun && !options.yes) {
      const preview = await act(deps, { ...base, dryRun: true, audit: { record: async () => undefined } });
      if (preview.items.length === 0) {
        report(io, preview, options.json);
        return 0;
      }
      const what = action === 'redrive' ? `back to ${queue}` : 'for good';
      await confirm(io, `${action} ${preview.items.length} message(s) from the ${role} of ${queue} ${what}?`);
    }
    const audit: AuditLog | undefined = dryRun ? undefined : await openCliTrail(io.stderr, auditFile!, 'cli', cfg.actor);
    const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY, label: `${action} ${queue} ${role}`, columns: io.columns });
    let result: HeldActionResult;
    try {
      result = await act(deps, {
        ...base,
        dryRun,
        audit: audit ?? { record: async () => undefined },
        onProgress: (p) => progress.update(p.scanned, p.total, `matched ${p.matched}, ${dryRun ? 'would' : 'done'} ${p.done}, failed ${p.failed}`),
      });
    } finally {
      await audit?.close();
    }
    const failed = result.items.filter((i) => i.outcome === 'failed').length;
    progress.finish(result.scanned, result.scanned, `matched ${result.items.length}, failed ${failed}`);
    report(io, result, options.json);
    return failed > 0 ? 1 : 0;
  });
}

function report(io: CliIo, r: HeldActionResult, json: boolean | undefined): void {
  if (json) {
    io.stdout(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const verb = r.action === 'redrive' ? 'redriven' : 'purged';
  const lines = r.items.map((i) => `${i.outcome === 'would' ? `would be ${verb}` : i.outcome === 'done' ? verb : `failed (${i.code})`}  ${i.envelopeId ?? '-'}  ${i.messageId}  ${i.reason}`);
  const done = r.items.filter((i) => i.outcome !== 'failed').length;
  lines.push(`${r.dryRun ? 'dry run: ' : ''}${r.action} ${r.queue} ${r.role}: ${done} ${r.dryRun ? `would be ${verb}` : verb}, ${r.items.length - done} failed, ${r.scanned} looked at`);
  io.stdout(`${lines.join('\n')}\n`);
}
