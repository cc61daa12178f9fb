// Keeps a streamed large document's garbage from piling up between scavenges. A streamed
// document allocates its bytes as ArrayBuffers (HTTP chunks, openpgp.js packet copies, S3
// parts); each is freed only when a GC finds its small JavaScript wrapper dead, and on the
// young generation that is a scavenge, which V8 starts when the young generation is full. The
// wrappers are small, so with 8 MiB semi-spaces the dead buffers pile up until V8's own
// external-memory limit asks for a GC, well after the RSS has risen (up to 92.5 MiB over a
// service's post-warm-up RSS while 100 MiB streamed). Asking for a scavenge every few MiB of
// document bytes bounds that garbage by the document's pace instead of the young generation's
// size, so small messages keep the larger young generation (0.87 of the CPU per 4 KiB message
// with 2 MiB semi-spaces; docs/benchmarks.md, "A young generation for small messages,
// scavenges for large ones").
//
// The services start with `--expose-gc` (nodeFlags.ts) for this; without it (a custom
// command without the flags, the tests) the request does nothing and V8 alone decides.

/** Document bytes streamed between two requested scavenges (any stream of the process counts). */
export const SCAVENGE_EVERY_BYTES = 4 * 1024 * 1024;

type GcFunction = (options: { type: 'minor' | 'major'; execution: 'sync' | 'async' }) => unknown;

let pending = 0;
let scavenges = 0;

/** V8's `gc`, when the process was started with `--expose-gc`. */
function exposedGc(): GcFunction | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as GcFunction) : undefined;
}

/**
 * Counts `bytes` of a streamed document; once {@link SCAVENGE_EVERY_BYTES} have passed since
 * the last one, asks V8 for a scavenge (the young generation only: a few hundred microseconds
 * with little alive, no full GC). Returns whether it asked.
 */
export function documentBytesStreamed(bytes: number): boolean {
  pending += bytes;
  if (pending < SCAVENGE_EVERY_BYTES) return false;
  pending = 0;
  const gc = exposedGc();
  if (!gc) return false;
  gc({ type: 'minor', execution: 'sync' });
  scavenges++;
  return true;
}

/** Scavenges requested so far in this process (tests, diagnostics). */
export function requestedScavenges(): number {
  return scavenges;
}
