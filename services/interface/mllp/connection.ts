import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FrameDecoder, frame } from './frame.ts';

/** TLS for an MLLP destination: the pinned server CA, and the client certificate when the EMR asks for one. */
export interface MllpTls {
  /** CA certificate(s) the EMR's certificate must chain to (PEM); the system store is not used. */
  ca: Buffer;
  /** Client certificate chain (PEM). */
  cert?: Buffer;
  /** Client private key (PEM). */
  key?: Buffer;
  /** Name checked against the EMR's certificate; defaults to the host. */
  servername?: string;
}

/** Where one MLLP connection goes. */
export interface MllpEndpoint {
  /** EMR host. */
  host: string;
  /** EMR port. */
  port: number;
  /** TLS settings; plain TCP when absent (the operator has said so explicitly). */
  tls?: MllpTls;
  /** Milliseconds to open the connection (TCP and TLS handshake). */
  connectTimeoutMs: number;
  /** Largest acknowledgement read. */
  maxAckBytes?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** How one exchange ended: the answer's bytes, or why there is none (a CR_ reason). */
export type Exchange = { kind: 'answer'; payload: Buffer } | { kind: 'failed'; reason: string };

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;

/**
 * One persistent MLLP connection with one message in flight: opened on first use,
 * reopened after a failure with exponential backoff (while backing off, an exchange fails
 * at once so the SQS message is retried later rather than held). Any exchange that does
 * not end in a clean answer closes the connection, so a late answer can never be taken
 * for the next message's.
 */
export class MllpConnection {
  readonly #endpoint: MllpEndpoint;
  readonly #now: () => number;
  #socket: Socket | undefined;
  #connecting: Promise<Socket> | undefined;
  #failures = 0;
  #retryAt = 0;
  #lastError = 'ECONNREFUSED';
  #waiter: ((exchange: Exchange) => void) | undefined;
  #busy: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(endpoint: MllpEndpoint) {
    this.#endpoint = endpoint;
    this.#now = endpoint.now ?? Date.now;
  }

  /** Sends one message and waits for the next framed answer (serialised: one in flight). */
  exchange(message: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Exchange> {
    const run = this.#busy.then(() => this.#exchange(message, timeoutMs, signal));
    this.#busy = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Drops the current socket (the next exchange opens a new one): the stream is out of step. */
  reset(): void {
    this.#drop('CR_MLLP_CLOSED');
  }

  /** Closes the connection for good. */
  close(): void {
    this.#closed = true;
    this.#drop('CR_MLLP_CLOSED');
  }

  async #exchange(message: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Exchange> {
    if (this.#closed || signal.aborted) return { kind: 'failed', reason: 'CR_MLLP_CLOSED' };
    let socket: Socket;
    try {
      socket = await this.#open();
    } catch {
      return { kind: 'failed', reason: `CR_MLLP_UNREACHABLE_${this.#lastError}`.slice(0, 64) };
    }
    return new Promise<Exchange>((resolve) => {
      const finish = (exchange: Exchange): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiter = undefined;
        if (exchange.kind === 'failed') this.#drop(exchange.reason);
        resolve(exchange);
      };
      const timer = setTimeout(() => finish({ kind: 'failed', reason: 'CR_MLLP_ACK_TIMEOUT' }), timeoutMs);
      const onAbort = (): void => finish({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = finish;
      socket.write(frame(message));
    });
  }

  #open(): Promise<Socket> {
    if (this.#socket && !this.#socket.destroyed) return Promise.resolve(this.#socket);
    if (this.#connecting) return this.#connecting;
    if (this.#now() < this.#retryAt) return Promise.reject(new Error('backing off'));
    const e = this.#endpoint;
    this.#connecting = new Promise<Socket>((resolve, reject) => {
      const socket = e.tls
        ? tlsConnect({ host: e.host, port: e.port, ca: e.tls.ca, cert: e.tls.cert, key: e.tls.key, servername: e.tls.servername ?? e.host, minVersion: 'TLSv1.2', rejectUnauthorized: true })
        : netConnect({ host: e.host, port: e.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), e.connectTimeoutMs);
      const onError = (err: Error & { code?: string }): void => {
        clearTimeout(timer);
        this.#connecting = undefined;
        this.#failures += 1;
        this.#retryAt = this.#now() + Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#failures - 1)) * (0.5 + Math.random() / 2);
        this.#lastError = String(err.code ?? 'ECONNRESET').replace(/[^A-Z0-9_]/gi, '').toUpperCase() || 'ERROR';
        socket.destroy();
        reject(err);
      };
      socket.once('error', onError);
      socket.once(e.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        this.#connecting = undefined;
        this.#failures = 0;
        this.#attach(socket);
        resolve(socket);
      });
    });
    return this.#connecting;
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    const decoder = new FrameDecoder(this.#endpoint.maxAckBytes ?? 1_048_576);
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        // An answer nobody waits for (after a timeout the socket is already gone) is a protocol breach.
        const waiter = this.#waiter;
        if (event.kind === 'message' && waiter) waiter({ kind: 'answer', payload: event.payload });
        else if (waiter) waiter({ kind: 'failed', reason: 'CR_MLLP_ACK_MALFORMED' });
        else this.#drop('CR_MLLP_ACK_MALFORMED');
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      // Only the current socket's close concerns the waiter; a dropped one was settled already.
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#waiter?.({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
    });
  }

  #drop(reason: string): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    this.#waiter?.({ kind: 'failed', reason });
  }
}
