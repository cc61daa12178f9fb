/**
 * V8 flags each service process is started with, wherever it is started (the Dockerfiles'
 * ENTRYPOINT, `npm start`, the large-document benchmark). `--max-semi-space-size=2` bounds the
 * young generation to 2 MiB semi-spaces (V8's default lets it grow to 16 MiB each, about 40 MiB
 * of heap more once a large document has streamed through). Small semi-spaces also mean frequent
 * scavenges, and a scavenge frees the ArrayBuffers that died young: the buffers a streamed
 * document allocates (the openpgp.js packet copies, the HTTP chunks) are freed every few MiB
 * instead of piling up until V8's external-memory limit (64 MiB) asks for a full collection.
 * These are command-line flags: V8 sizes its heap when the process starts, so a running
 * process cannot change them. docs/benchmarks.md (10) gives the figures with and without.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
