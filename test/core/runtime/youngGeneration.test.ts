// A streamed large document asks V8 for a scavenge every few MiB, so its dead buffers are freed at
// the document's pace whatever the young generation's size. Real child processes: one started
// with the services' V8 flags (as every service is), one without `--expose-gc`.
import { describe, expect, it } from 'vitest';
import { SERVICE_NODE_FLAGS } from '../../../services/core/runtime/nodeFlags.ts';
import { SCAVENGE_EVERY_BYTES } from '../../../services/core/runtime/youngGeneration.ts';
import { runNode } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

interface Streamed {
  requested: number;
  peakArrayBuffers: number;
  bytes: number;
}

const MiB = 1024 * 1024;

async function stream(nodeOptions: string, mib: number): Promise<Streamed> {
  const proc = runNode('test/core/runtime/fixtures/streamDocument.ts', [String(mib)], { NODE_OPTIONS: nodeOptions });
  try {
    const line = await waitFor(() => proc.lines.find((l) => l.startsWith('{')), { timeoutMs: 60_000, what: 'the streamed document' });
    return JSON.parse(line) as Streamed;
  } finally {
    await proc.stop();
  }
}

describe('scavenges paced by streamed document bytes', () => {
  it('with the services flags: one scavenge per 4 MiB streamed, and the dead buffers never pile up', async () => {
    expect(SERVICE_NODE_FLAGS).toContain('--expose-gc');
    const got = await stream(SERVICE_NODE_FLAGS.join(' '), 64);
    expect(got.bytes).toBe(64 * MiB);
    expect(got.requested).toBe((64 * MiB) / SCAVENGE_EVERY_BYTES);
    // What the scavenges did: without them this fixture held 36–51 MB of dead chunks before V8
    // collected them (8 MiB semi-spaces; the chunks' small wrappers hardly fill the young generation).
    // (Node's `gc` performance entries are not counted: back-to-back GCs can share one.)
    expect(got.peakArrayBuffers).toBeLessThan(20 * MiB);
  });

  it('without --expose-gc nothing is requested and the document streams whole', async () => {
    const got = await stream(SERVICE_NODE_FLAGS.filter((f) => f !== '--expose-gc').join(' '), 16);
    expect(got.bytes).toBe(16 * MiB);
    expect(got.requested).toBe(0);
  });
});
