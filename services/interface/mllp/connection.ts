import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FrameDecoder, frame } from './frame.ts';
import { readAck } from './hl7.ts';

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
/** Control ids remembered per socket as answered, so their later ACKs are discarded. */
const SETTLED_KEPT = 64;

/** MSA-2 of an answer, or undefined when it is not a readable acknowledgement. */
function ackedControlId(payload: Buffer): string | undefined {
  try {
    return readAck(payload).controlId;
  } catch {
    return undefined;
  }
}

/**
 * One persistent MLLP connection with one message in flight: opened on first use,
 * reopened after a failure with exponential backoff (while backing off, an exchange fails
 * at once so the SQS message is retried later rather than held). Any exchange that does
 * not end in a clean answer closes the connection, so a late answer can never be taken
 * for the next message's. An exchange told its MSH-10 remembers it, once answered, for as long
 * as the socket lives: a further ACK naming it (the application ACK after a commit ACK, in
 * enhanced mode) is discarded, not taken for a later message's answer.
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
  /** MSH-10 of the exchange in flight, when its caller named it. */
  #expecting: string | undefined;
  /** MSH-10s answered on the current socket (oldest first, at most SETTLED_KEPT). */
  #settled: string[] = [];
  #busy: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(endpoint: MllpEndpoint) {
    this.#endpoint = endpoint;
    this.#now = endpoint.now ?? Date.now;
  }

  /**
   * Sends one message and waits for the next framed answer (serialised: one in flight). An
   * abort ends the wait, whether the exchange is queued behind another, connecting or waiting
   * for its answer. `controlId` (the message's MSH-10) lets later duplicate ACKs for it be discarded.
   */
  async exchange(message: Buffer, timeoutMs: number, signal: AbortSignal, controlId?: string): Promise<Exchange> {
    const previous = this.#busy;
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    // The next exchange waits for this one and everything before it, even if this one gave up its turn.
    this.#busy = previous.then(() => done);
    try {
      if ((await untilAborted(previous.then(() => true), signal)) === undefined) return { kind: 'failed', reason: 'CR_MLLP_CLOSED' };
      return await this.#exchange(message, timeoutMs, signal, controlId);
    } finally {
      release();
    }
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

  async #exchange(message: Buffer, timeoutMs: number, signal: AbortSignal, controlId: string | undefined): Promise<Exchange> {
    if (this.#closed || signal.aborted) return { kind: 'failed', reason: 'CR_MLLP_CLOSED' };
    let socket: Socket | undefined;
    try {
      // An abort does not wait for the connection: it goes on opening, for the next exchange.
      socket = await untilAborted(this.#open(), signal);
    } catch {
      if (this.#closed) return { kind: 'failed', reason: 'CR_MLLP_CLOSED' };
      return { kind: 'failed', reason: `CR_MLLP_UNREACHABLE_${this.#lastError}`.slice(0, 64) };
    }
    // Aborted or closed while connecting: nothing was written, so the open socket stays usable.
    if (socket === undefined || this.#closed || signal.aborted || socket.destroyed) return { kind: 'failed', reason: 'CR_MLLP_CLOSED' };
    return new Promise<Exchange>((resolve) => {
      const finish = (exchange: Exchange): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiter = undefined;
        this.#expecting = undefined;
        if (exchange.kind === 'failed') this.#drop(exchange.reason);
        resolve(exchange);
      };
      const timer = setTimeout(() => finish({ kind: 'failed', reason: 'CR_MLLP_ACK_TIMEOUT' }), timeoutMs);
      const onAbort = (): void => finish({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = finish;
      this.#expecting = controlId;
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
        // Closed for good while it was opening: the socket has no one to serve.
        if (this.#closed) {
          socket.destroy();
          reject(new Error('closed while connecting'));
          return;
        }
        this.#attach(socket);
        resolve(socket);
      });
    });
    return this.#connecting;
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    this.#settled = [];
    const decoder = new FrameDecoder(this.#endpoint.maxAckBytes ?? 1_048_576);
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'message' && this.#duplicate(event.payload)) continue;
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

  /**
   * Whether an answer repeats an ACK for a message already answered on this socket (then it is
   * discarded); an answer naming the message in flight marks it answered.
   */
  #duplicate(payload: Buffer): boolean {
    if (this.#expecting === undefined && this.#settled.length === 0) return false;
    const acked = ackedControlId(payload);
    if (acked === undefined || acked === '') return false;
    if (acked === this.#expecting) {
      if (!this.#settled.includes(acked)) this.#settled.push(acked);
      if (this.#settled.length > SETTLED_KEPT) this.#settled.shift();
      return false;
    }
    return this.#settled.includes(acked);
  }

  #drop(reason: string): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    this.#waiter?.({ kind: 'failed', reason });
  }
}

/** Settles as `work` does, or resolves undefined as soon as `signal` aborts (`work` then runs on, its failure ignored). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
