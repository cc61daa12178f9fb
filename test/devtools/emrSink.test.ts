// The demo EMR endpoint's fault modes, as the fault suite drives them: a flapping EMR is driven by
// requests (bursts of failures between successes, a bounded number of failures), not by the clock.
import { afterEach, describe, expect, it } from 'vitest';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';

let sink: EmrSink | undefined;
afterEach(async () => {
  await sink?.stop();
  sink = undefined;
});

async function post(s: EmrSink, id: string): Promise<number> {
  const res = await fetch(`${s.url}/deliveries`, { method: 'POST', headers: { 'idempotency-key': id, 'content-type': 'application/fhir+json' }, body: '{}' });
  await res.arrayBuffer();
  return res.status;
}

describe('EMR sink modes', () => {
  it('flap: `burst` failures, `between` successes, until `failures` requests failed; then ok', async () => {
    sink = await startEmrSink();
    sink.setMode({ kind: 'flap', status: 503, burst: 2, between: 1, failures: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push(await post(sink, `id-${i}`));
    expect(statuses).toEqual([503, 503, 200, 503, 503, 200, 503, 200, 200, 200]);
    expect(sink.deliveries.size).toBe(5);
    // A new mode starts its own count.
    sink.setMode({ kind: 'flap', status: 502, burst: 1, between: 1, failures: 1 });
    expect([await post(sink, 'a'), await post(sink, 'b'), await post(sink, 'c')]).toEqual([502, 200, 200]);
  });

  it('fail with a count answers that many failures, then ok', async () => {
    sink = await startEmrSink();
    sink.setMode({ kind: 'fail', status: 503, count: 2 });
    expect([await post(sink, 'a'), await post(sink, 'b'), await post(sink, 'c')]).toEqual([503, 503, 200]);
  });
});
