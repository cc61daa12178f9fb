// V8's memory reducer gives the pages a burst freed back to the OS once a service is idle. In
// Node 24 it never starts on its own in a process that allocates nothing on the embedder's
// heap (only its 100 s watchdog does), so the nudge is what this checks: a real child process,
// started with the services' V8 flags, allocates a burst and goes idle.
import { describe, expect, it } from 'vitest';
import { SERVICE_NODE_FLAGS } from '../../../services/core/runtime/nodeFlags.ts';
import { runNode } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

interface Line {
  event: 'burst' | 'reduced';
  rssAnon: number;
  rssAnonAtStart?: number;
}

describe('memory reducer nudge', () => {
  it('an idle process gives the heap pages a burst freed back (regression: they stayed resident until the 100 s watchdog)', async () => {
    const proc = runNode('test/core/runtime/fixtures/idleAfterBurst.ts', [], { NODE_OPTIONS: SERVICE_NODE_FLAGS.join(' ') });
    try {
      const lines = (): Line[] => proc.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
      const burst = await waitFor(() => lines().find((l) => l.event === 'burst'), { timeoutMs: 60_000, what: 'the burst' });
      const rise = burst.rssAnon - burst.rssAnonAtStart!;
      // The burst leaves far more resident than its 40 MB of held records' share once idle.
      expect(rise).toBeGreaterThan(40 * 1024 * 1024);
      // The reducer checks every 8 s and runs once the allocation rate reads low: well within
      // the 100 s its watchdog would take. It may take two GCs to give back most of the pages.
      const lowest = await waitFor(
        () => {
          const reduced = lines().filter((l) => l.event === 'reduced');
          const min = Math.min(...reduced.map((l) => l.rssAnon));
          return reduced.length > 0 && min < burst.rssAnon - rise / 2 ? min : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'a memory-reducing GC giving back half of the rise' },
      );
      expect(lowest).toBeLessThan(burst.rssAnon - rise / 2);
    } finally {
      await proc.stop();
    }
  });
});
