// Scenario 5: visibility expiring during slow processing. VISIBILITY_TIMEOUT_SECONDS=5,
// HEARTBEAT_INTERVAL_SECONDS=4 and an EMR that takes 7 s. While the heartbeat runs it keeps
// the message hidden (received once). With the heartbeat stopped (the whole process frozen
// with SIGSTOP past the visibility timeout, as a long GC pause or a stalled VM would), SQS
// hands the message out again: the second receive is recognised as a duplicate of the
// envelope id in progress, and the EMR gets one delivery.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { depth, report, sendSealedChartUpdate, startWorld, type ServiceProcess, type World } from './harness.ts';

const VISIBILITY_S = 5;
const EMR_DELAY_MS = 7_000;

let world: World;
let iface: ServiceProcess;

beforeAll(async () => {
  world = await startWorld({
    common: { VISIBILITY_TIMEOUT_SECONDS: String(VISIBILITY_S), HEARTBEAT_INTERVAL_SECONDS: '4', LOG_LEVEL: 'info' },
    iface: { EMR_TIMEOUT_MS: '15000' },
  });
  iface = await world.service('interface');
});

afterAll(async () => {
  await world?.close();
});

const duplicateLines = (id: string): number => iface.lines().filter((l) => l.includes('duplicate envelope id') && l.includes(id)).length;
const receivedAudited = async (id: string): Promise<boolean> =>
  (await readFile(world.env.iface.AUDIT_FILE!, 'utf8')).split('\n').some((l) => l.includes('"message.received"') && l.includes(id));

async function settled(id: string): Promise<void> {
  const q = world.queues['app-to-interface'].url;
  await waitFor(async () => world.sink.deliveries.has(id) && (await depth(world.emulator.sqs, q)).total === 0, { timeoutMs: 40_000, intervalMs: 100, what: 'delivered and deleted' });
}

describe('visibility timeout during slow processing', () => {
  const rows: Array<{ id: string; duplicates: number }> = [];
  afterAll(() => {
    const ids = rows.map((r) => r.id);
    const delivered = ids.filter((id) => world.sink.deliveries.has(id));
    report('visibility-expiry', {
      sent: ids.length,
      delivered: delivered.length,
      duplicatesSuppressed: rows.reduce((n, r) => n + r.duplicates, 0),
      lost: ids.length - delivered.length,
      extra: { 'emr-attempts': ids.reduce((n, id) => n + (world.sink.deliveries.get(id)?.attempts ?? 0), 0), 'visibility-s': VISIBILITY_S, 'heartbeat-s': 4, 'emr-delay-s': EMR_DELAY_MS / 1000 },
    });
  });

  it('heartbeat running: a 7 s EMR call outlives the 5 s visibility, the message is received once', async () => {
    world.sink.setMode({ kind: 'slow', delayMs: EMR_DELAY_MS, count: 1 });
    const id = await sendSealedChartUpdate(world, world.queues['app-to-interface'].url, 'vis-heartbeat');
    await settled(id);
    rows.push({ id, duplicates: duplicateLines(id) });
    expect(world.sink.deliveries.get(id)!.attempts).toBe(1);
    expect(duplicateLines(id)).toBe(0);
  });

  it('heartbeat stopped (process frozen past the visibility timeout): received twice, applied once', async () => {
    world.sink.setMode({ kind: 'slow', delayMs: EMR_DELAY_MS, count: 1 });
    const id = await sendSealedChartUpdate(world, world.queues['app-to-interface'].url, 'vis-frozen');
    // The EMR call starts right after the receive is audited; then freeze the process.
    await waitFor(() => receivedAudited(id), { timeoutMs: 15_000, what: 'message received' });
    iface.freeze();
    const frozenAt = Date.now();
    try {
      // Time is the scenario: frozen longer than the visibility timeout (no heartbeat runs).
      await waitFor(() => Date.now() - frozenAt > (VISIBILITY_S + 1.5) * 1000, { timeoutMs: 20_000, intervalMs: 100, what: 'freeze duration' });
    } finally {
      iface.thaw();
    }
    await settled(id);
    await waitFor(() => duplicateLines(id) >= 1, { timeoutMs: 15_000, what: 'second receive recognised as a duplicate' });
    rows.push({ id, duplicates: duplicateLines(id) });
    expect(world.sink.deliveries.get(id)!.attempts).toBe(1);
    expect(world.sink.requests.filter((r) => r.envelopeId === id)).toHaveLength(1);
  });
});
