import { connect } from 'node:net';

/** What a trickling client saw: when the server cut it off, and what it answered. */
export interface TrickleResult {
  /** Milliseconds from connecting to the socket closing. */
  elapsedMs: number;
  /** Raw bytes the server sent (latin1). */
  response: string;
}

/**
 * Opens a real socket, sends `head` (request line and headers, announcing a body), then one
 * body byte every `everyMs` and never finishes; resolves when the server closes the socket
 * (or rejects after `giveUpMs`, which means the server held it).
 */
export function trickle(port: number, head: string, opts: { everyMs?: number; giveUpMs?: number; onConnected?: () => void } = {}): Promise<TrickleResult> {
  const everyMs = opts.everyMs ?? 100;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let response = '';
    let timer: NodeJS.Timeout | undefined;
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head);
      timer = setInterval(() => socket.writable && socket.write('x'), everyMs);
      opts.onConnected?.();
    });
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server still held the trickling client after ${opts.giveUpMs ?? 15_000} ms`));
    }, opts.giveUpMs ?? 15_000);
    socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ elapsedMs: Date.now() - started, response });
    });
  });
}
