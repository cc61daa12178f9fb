// A streamed chart update can take far longer than its delivery lease (EMR_TIMEOUT_MS bounds
// each wait, not the transfer). The lease is renewed while the update flows, so a copy handled
// meanwhile, on another instance or on this one, waits instead of posting it again; a holder
// killed mid-delivery is taken over once its last lease ends; a holder cut off from the store
// long enough to be taken over stops its own transfer and writes no outcome. Real DynamoDB
// (dynalite), the devtools EMR sink over HTTP, the delivery effect as the service wires it.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { OBJECT_POINTER_TYPE, encodePointer, objectKey } from '../../../services/core/objects/pointer.ts';
import type { LargeRead } from '../../../services/core/runtime/largeObjects.ts';
import { createDeliveryLedger } from '../../../services/core/state/deliveryLedger.ts';
import type { StateTable } from '../../../services/core/state/table.ts';
import type { HandlerResult, ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { startEmrSink, type EmrSink } from '../../../services/devtools/emrSink.ts';
import { createEmrClient } from '../../../services/interface/delivery/emrClient.ts';
import { emrDeliveryEffect } from '../../../services/interface/delivery/handler.ts';
import { captureLogger, type CapturedLogger } from '../../helpers/logs.ts';
import { openTestStateTable, startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { waitFor } from '../../helpers/wait.ts';

const KiB = 1024;
/** A short lease (the service's is EMR_TIMEOUT_MS + 5 s): the transfers below last several of them. */
const LEASE_MS = 1_500;

let backend: TestSqs;
let table: StateTable;
let sink: EmrSink;
beforeAll(async () => {
  backend = await startTestSqs();
  table = openTestStateTable(backend);
  sink = await startEmrSink();
});
afterAll(async () => {
  await sink.stop();
  await table.close();
  await backend.stop();
});

function pointerEnvelope(bytes: number): Envelope {
  const base = { kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: OBJECT_POINTER_TYPE };
  const id = buildEnvelope({ ...base, body: '{}' }).id;
  const pointer = encodePointer({ bucket: 'b-objects', key: objectKey('', 'app-to-interface', id), bytes, sha256: 'a'.repeat(64), contentType: 'application/xml' });
  return { ...buildEnvelope({ ...base, body: pointer }), id };
}

/** The checked plaintext of a large update, `chunks` KiB trickled one every `everyMs` (a slow S3 read or a slow EMR). */
function trickled(chunks: number, everyMs: number): LargeRead {
  let i = 0;
  const plaintext = new Readable({
    read() {
      if (i >= chunks) return void this.push(null);
      const chunk = Buffer.alloc(KiB, i++ % 251);
      setTimeout(() => this.push(chunk), everyMs);
    },
  });
  return { contentType: 'application/xml', bytes: chunks * KiB, plaintext };
}

/** One interface instance: its own holder id, ledger, EMR client (streaming at `pace`) and delivery effect. */
function instance(holder: string, pace: { chunks: number; everyMs: number }, store: StateTable = table): { run: (e: Envelope, signal?: AbortSignal) => Promise<HandlerResult>; log: CapturedLogger } {
  const log = captureLogger('interface');
  const ledger = createDeliveryLedger({ table: store, holder, leaseMs: LEASE_MS, ttlSeconds: 3600, logger: log.logger });
  // EMR_TIMEOUT_MS (1 s) bounds each wait; every transfer here keeps flowing and outlasts it.
  const emr = createEmrClient({ url: `${sink.url}/deliveries`, timeoutMs: 1_000, openLarge: async () => trickled(pace.chunks, pace.everyMs) });
  const effect = emrDeliveryEffect({ emr, audit: { record: async () => undefined }, logger: log.logger, ledger });
  return { run: (e, signal = new AbortController().signal) => effect(e, { receiveCount: 1 } as ReceivedMessage, signal), log };
}

/** The ledger item of a delivery. */
const item = async (envelope: Envelope): Promise<Record<string, unknown> | undefined> => table.get(`emr#${envelope.id}`);
/** Requests the EMR sink answered for this envelope (a transfer cut off midway is not one). */
const posts = (envelope: Envelope): number => sink.requests.filter((r) => r.envelopeId === envelope.id).length;
/** Waits until the lease first written for `envelope` has run out by the clock (it would have lapsed without renewal). */
async function pastFirstLease(envelope: Envelope): Promise<void> {
  const first = Number((await waitFor(() => item(envelope), { what: 'the delivery to begin' })).leaseUntil);
  await waitFor(() => Date.now() > first + 200, { intervalMs: 20, what: 'the first lease to run out' });
}

/** A state table whose calls fail while `cut` is set (this instance cannot reach DynamoDB), optionally only renewals. */
function cuttable(onlyRenewals: boolean): StateTable & { cut: boolean } {
  const unreachable = (): Promise<never> => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { name: 'NetworkingError' }));
  const wrapped = {
    cut: false,
    get name() {
      return table.name;
    },
    get calls() {
      return table.calls;
    },
    get: (pk: string) => (wrapped.cut && !onlyRenewals ? unreachable() : table.get(pk)),
    put: (...args: Parameters<StateTable['put']>) => (wrapped.cut && !onlyRenewals ? unreachable() : table.put(...args)),
    putMany: (...args: Parameters<StateTable['putMany']>) => (wrapped.cut && !onlyRenewals ? unreachable() : table.putMany(...args)),
    update: (...args: Parameters<StateTable['update']>) => (wrapped.cut && (!onlyRenewals || args[1].update === 'SET leaseUntil = :lease') ? unreachable() : table.update(...args)),
    delete: (...args: Parameters<StateTable['delete']>) => (wrapped.cut && !onlyRenewals ? unreachable() : table.delete(...args)),
    check: () => table.check(),
    close: async () => undefined,
  };
  return wrapped;
}

describe('the delivery lease of a long streamed chart update', () => {
  it('is kept while the update flows: a copy handled meanwhile on another instance or on this one is retried, not posted, and ends as a duplicate', async () => {
    // 40 KiB at one KiB per 100 ms: about 4 s, well past the 1.5 s lease.
    const a = instance('instance-a', { chunks: 40, everyMs: 100 });
    const b = instance('instance-b', { chunks: 1, everyMs: 0 });
    const envelope = pointerEnvelope(40 * KiB);
    let settled = false;
    const first = a.run(envelope).finally(() => (settled = true));
    await pastFirstLease(envelope);
    expect(settled, 'the first delivery still flows past its first lease').toBe(false);

    expect(await b.run(envelope)).toEqual({ status: 'retry', reason: 'CR_DELIVERY_IN_PROGRESS', afterSeconds: expect.any(Number) });
    expect(await a.run(envelope)).toEqual({ status: 'retry', reason: 'CR_DELIVERY_IN_PROGRESS', afterSeconds: expect.any(Number) });
    expect(settled, 'the copies were answered while the first delivery flowed').toBe(false);
    expect(posts(envelope), 'nothing reached the EMR yet').toBe(0);

    expect(await first).toEqual({ status: 'done' });
    expect(await b.run(envelope)).toEqual({ status: 'duplicate' });
    expect(posts(envelope), 'the EMR saw one attempt').toBe(1);
    expect(sink.deliveries.get(envelope.id)).toMatchObject({ bytes: 40 * KiB, attempts: 1 });
    expect(await item(envelope)).toMatchObject({ state: 'delivered', attempts: 1, httpStatus: 200 });
    expect(a.log.entries().filter((e) => e.msg === 'lease renewal failed'), 'every renewal went through').toEqual([]);
  });

  it('of a holder killed mid-delivery ends with its last renewal: another instance takes over after that lease, as attempt 2', async () => {
    const store = cuttable(false);
    const killed = instance('instance-killed', { chunks: 40, everyMs: 100 }, store);
    const b = instance('instance-b', { chunks: 1, everyMs: 0 });
    const envelope = pointerEnvelope(40 * KiB);
    const connection = new AbortController();
    const first = killed.run(envelope, connection.signal);
    await pastFirstLease(envelope);
    expect(await b.run(envelope)).toMatchObject({ status: 'retry', reason: 'CR_DELIVERY_IN_PROGRESS' });

    // The process dies: its connections drop and it writes nothing more (no renewal, no abandon).
    store.cut = true;
    connection.abort();
    await expect(first).rejects.toThrow('ECONNREFUSED');
    const lastLease = Number((await item(envelope))?.leaseUntil);

    const taken = await waitFor(
      async () => {
        const result = await b.run(envelope);
        if (result.status === 'retry' && result.reason === 'CR_DELIVERY_IN_PROGRESS') return undefined;
        return { result, at: Date.now() };
      },
      { intervalMs: 100, what: 'another instance to take the delivery over' },
    );
    expect(taken.result).toEqual({ status: 'done' });
    expect(taken.at, 'not before the last lease ran out').toBeGreaterThanOrEqual(lastLease);
    expect(await item(envelope)).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(posts(envelope), 'the killed holder never completed a post').toBe(1);
  });

  it('of a holder cut off from the store until another attempt took it over is lost: its transfer stops, retried as CR_DELIVERY_LEASE_LOST, and it writes no outcome', async () => {
    const store = cuttable(true);
    // 80 KiB at one KiB per 100 ms: about 8 s, unless it is cut off.
    const a = instance('instance-a', { chunks: 80, everyMs: 100 }, store);
    const b = instance('instance-b', { chunks: 1, everyMs: 0 });
    const envelope = pointerEnvelope(80 * KiB);
    store.cut = true;
    let settled = false;
    const first = a.run(envelope).finally(() => (settled = true));
    await pastFirstLease(envelope);

    // Its renewals failed: the lease ran out while it still streams, and the copy is delivered elsewhere.
    expect(await b.run(envelope)).toEqual({ status: 'done' });
    expect(await item(envelope)).toMatchObject({ state: 'delivered', attempts: 2, httpStatus: 200 });
    expect(settled, 'the first transfer still flows').toBe(false);

    store.cut = false;
    expect(await first).toEqual({ status: 'retry', reason: 'CR_DELIVERY_LEASE_LOST' });
    expect(await item(envelope), 'the delivery recorded by the other attempt stands').toMatchObject({ state: 'delivered', attempts: 2, httpStatus: 200 });
    expect(posts(envelope), 'the cut-off transfer never completed').toBe(1);
    const lines = a.log.entries();
    expect(lines.some((e) => e.msg === 'lease renewal failed' && e.envelopeId === envelope.id)).toBe(true);
    expect(lines.some((e) => e.msg === 'EMR delivery stopped: another attempt took its lease over' && e.attempt === 1)).toBe(true);
  });
});
