/**
 * V8 flags each service process is started with, wherever it is started (the Dockerfiles'
 * ENTRYPOINT, `npm start`, the benchmarks' service processes).
 *
 * `--max-semi-space-size=8` bounds the young generation to 8 MiB semi-spaces (V8's default lets
 * them grow to 16 MiB each). Small messages allocate a few hundred KB each (the AWS SDK's calls,
 * openpgp.js's key checks): with 2 MiB semi-spaces, as before, a service scavenged about twice per
 * submission and promoted much of what was in flight; 8 MiB cost 0.87 of the CPU per 4 KiB message
 * (docs/benchmarks.md, "A young generation for small messages, scavenges for large ones").
 *
 * `--expose-gc` lets a streamed large document ask for a scavenge every few MiB
 * (youngGeneration.ts): its dead buffers are then freed at the document's pace, which the
 * 2 MiB semi-spaces used to do by scavenging often, and the peak RSS stays bounded with the
 * larger young generation. Nothing else calls `gc`.
 *
 * These are command-line flags: V8 sizes its heap when the process starts, so a running
 * process cannot change them. docs/benchmarks.md (10) gives the figures with and without.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--expose-gc'];
