// `care-relay status`: per service, its queues (main, DLQ, quarantine: visible, in flight,
// delayed, oldest held message, held messages by reason), emergency mode (state table), and from
// the running service its audit trail head and (app) inbox fill. Counts, codes and hashes only.
import { queueStatus, type QueueStatus } from '../core/ops/index.ts';
import type { OpsConfig } from './config.ts';
import type { CliIo } from './io.ts';
import { reportIncomplete } from './failure.ts';
import { CONSUMED_QUEUES, resolveFor, sqsClientFor } from './opsDeps.ts';
import { readEmergency, readLiveStatus, type EmergencyView, type Known, type LiveStatus } from './serviceState.ts';

/** Options of `care-relay status`. */
export interface StatusOptions {
  /** Only this service. */
  service?: 'interface' | 'app';
  /** Print JSON. */
  json?: boolean;
  /** Messages read per DLQ or quarantine queue to count reasons (default 1000). */
  limit?: number;
}

/** The status of one service, as `--json` prints it. */
export interface ServiceStatusView {
  /** Service name. */
  service: 'interface' | 'app';
  /** Emergency mode from the state table. */
  emergency: Known<EmergencyView>;
  /** From the running service: audit head and inbox fill. */
  live: Known<LiveStatus>;
  /** The queues it consumes. */
  queues: QueueStatus[];
}

const ENV_OF = { interface: 'CARE_RELAY_INTERFACE_URL', app: 'CARE_RELAY_APP_URL' } as const;

/** Runs `care-relay status`; resolves with the exit code (1 when held messages could not all be read). */
export async function status(cfg: OpsConfig, io: CliIo, options: StatusOptions): Promise<number> {
  const services = options.service ? [options.service] : (['interface', 'app'] as const);
  const client = sqsClientFor(cfg);
  try {
    const views: ServiceStatusView[] = [];
    for (const service of services) {
      const deps = await resolveFor(client, cfg, CONSUMED_QUEUES[service], true);
      const [queues, emergency, live] = await Promise.all([
        queueStatus(deps, options.limit === undefined ? {} : { inspectLimit: options.limit }),
        readEmergency(cfg, service),
        readLiveStatus(cfg.services[service], ENV_OF[service]),
      ]);
      views.push({ service, emergency, live, queues });
    }
    io.stdout(options.json ? `${JSON.stringify({ services: views }, null, 2)}\n` : views.map(render).join('\n'));
    const short = views.flatMap((v) => v.queues.filter((q) => q.partialReason === 'unreachable').map((q) => q.queue));
    if (short.length === 0) return 0;
    reportIncomplete(io, options.json, `status: the DLQ or quarantine queue of ${short.join(', ')} held more messages than could be read (on a FIFO queue, messages behind others of their group; or messages hidden by another reader): counts by reason are partial`);
    return 1;
  } finally {
    client.destroy();
  }
}

function age(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

function unknown(k: { code: string; reason: string }): string {
  return `unknown (${k.code}: ${k.reason})`;
}

/** The text form of one service's status. */
export function render(v: ServiceStatusView): string {
  const lines: string[] = [v.service];
  const e = v.emergency;
  lines.push(`  emergency mode  ${e.ok ? `${e.value.active ? 'ON' : 'off'}${e.value.changedAt ? `  (since ${e.value.changedAt} by ${e.value.actor})` : ''}` : unknown(e)}`);
  if (v.service === 'app') lines.push(`  inbox           ${v.live.ok ? (v.live.value.inbox ? `${v.live.value.inbox.records}/${v.live.value.inbox.capacity} records` : '-') : unknown(v.live)}`);
  const head = v.live.ok ? v.live.value.auditHead : null;
  lines.push(`  audit head      ${v.live.ok ? (head ? `seq ${head.seq} hash ${head.hash}` : '-') : unknown(v.live)}`);
  for (const q of v.queues) {
    lines.push(`  ${q.queue}${q.fifo ? ' (FIFO)' : ''}`);
    lines.push(`    ${''.padEnd(11)}${'visible'.padStart(9)}${'in flight'.padStart(11)}${'delayed'.padStart(9)}${'oldest'.padStart(8)}  by reason`);
    for (const [role, d] of [['queue', q.main], ['dlq', q.dlq], ['quarantine', q.quarantine]] as const) {
      const reasons = 'byReason' in d ? Object.entries(d.byReason).map(([r, n]) => `${r} ${n}`).join(', ') : '';
      lines.push(`    ${role.padEnd(11)}${String(d.visible).padStart(9)}${String(d.inFlight).padStart(11)}${String(d.delayed).padStart(9)}${age(d.oldestAgeSeconds).padStart(8)}  ${reasons}`.trimEnd());
    }
    if (q.partialReason === 'limit') lines.push('    (more held messages than inspected: counts by reason are partial; raise --limit)');
    if (q.partialReason === 'unreachable') lines.push('    (some held messages could not be read: counts by reason are partial)');
  }
  return `${lines.join('\n')}\n`;
}
