import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { DEFAULT_TLS_CIPHERS } from '../../core/http/server.ts';
import { FrameDecoder, frame } from './frame.ts';
import { buildAck, parseHl7, type ParsedHl7 } from './hl7.ts';

/** Who sent a message: the source address and, on TLS, the client certificate's SHA-256 fingerprint. */
export interface MllpSource {
  /** Source address. */
  ip: string;
  /** Upper-case hex, no colons. */
  certSha256?: string;
}

/** What the handler answers one message with: the ACK (unframed), and whether to close the connection after it. */
export interface MllpAnswer {
  /** The ACK bytes, unframed. */
  ack: Buffer;
  /** Close the connection once the ACK is written (the rest of what the peer sent is not read). */
  close?: boolean;
}

/** An address over its connection limit has its refusals logged at most this often (with their count). */
const REFUSALS_LOGGED_EVERY_MS = 60_000;

type FramingCode = 'CR_MLLP_FRAME_INVALID' | 'CR_MLLP_FRAME_TOO_LARGE';

/** Options for {@link startMllpListener}. */
export interface MllpListenerOptions {
  /** Port (0 picks a free one). */
  port: number;
  /** Address. */
  host: string;
  /**
   * TLS (1.2 or later): server certificate and key; `ca` verifies client certificates against
   * it (else they are pinned by fingerprint only); `ciphers` as the HTTP server's (TLS_CIPHERS).
   */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; ciphers?: string | undefined };
  /** Largest message read. */
  maxFrameBytes: number;
  /** Milliseconds a started frame may take to arrive in full; on TLS, also the time the handshake may take. */
  frameTimeoutMs: number;
  /** Milliseconds a connection may go without starting a frame, after connecting or after its last answer (CR/LF filler does not count). */
  idleTimeoutMs: number;
  /** Connections open at once (TCP connections, a TLS handshake in progress included); more are refused. */
  maxConnections: number;
  /** Connections open at once from one source address (counted as `maxConnections` is); more from it are refused. */
  maxConnectionsPerAddress: number;
  /** Handles one whole message and returns its answer. */
  onMessage: (payload: Buffer, source: MllpSource) => Promise<MllpAnswer>;
  /** Service logger (connection events, never content). */
  logger: Logger;
}

/** A running MLLP listener. */
export interface MllpListener {
  /** The port it listens on. */
  port: number;
  /** Stops accepting, lets in-flight messages finish (up to `deadlineMs`), then closes every connection (TLS handshakes in progress too). */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * The partner MLLP listener: frames are bounded in size and time, idle connections are
 * closed, messages on one connection are handled one at a time (the socket is paused
 * meanwhile), and a framing error is answered with an AR before the connection closes
 * (messages complete before it are handled and answered first).
 */
export async function startMllpListener(options: MllpListenerOptions): Promise<MllpListener> {
  const log = options.logger;
  const sockets = new Set<Socket>();
  // Every TCP connection, TLS handshakes in progress included, so close() can end them all.
  const raw = new Set<Socket>();
  const busy = new Set<Promise<void>>();

  const onConnection = (socket: Socket): void => {
    sockets.add(socket);
    const ip = socket.remoteAddress ?? 'unknown';
    const tlsSocket = options.tls ? (socket as TLSSocket) : undefined;
    const fingerprint = tlsSocket?.getPeerCertificate()?.fingerprint256;
    const source: MllpSource = { ip, ...(fingerprint ? { certSha256: fingerprint.replaceAll(':', '').toUpperCase() } : {}) };
    const decoder = new FrameDecoder(options.maxFrameBytes);
    let frameStarted = 0;
    let timer: NodeJS.Timeout | undefined;
    let handling = false;
    let queue: Buffer[] = [];
    let framingError: FramingCode | undefined;
    // The last answer is written: nothing more is read.
    let closing = false;

    const arm = (): void => {
      clearTimeout(timer);
      if (handling) return;
      const wait = decoder.inFrame ? Math.max(0, frameStarted + options.frameTimeoutMs - Date.now()) : options.idleTimeoutMs;
      timer = setTimeout(() => {
        log.info({ ip, reason: decoder.inFrame ? 'frame-timeout' : 'idle' }, 'MLLP connection closed');
        socket.destroy();
      }, wait);
    };
    // Whatever the peer sends after the last answer is not read: a short grace for the ACK to leave, then close.
    const endWith = (ack: Buffer): void => {
      clearTimeout(timer);
      closing = true;
      queue = [];
      socket.end(frame(ack));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const nak = (code: FramingCode): void => {
      log.warn({ ip, code }, 'MLLP framing error; closing the connection');
      const text = code === 'CR_MLLP_FRAME_TOO_LARGE' ? `messages over ${options.maxFrameBytes} bytes are not accepted` : 'expected <VT>message<FS><CR> framing';
      endWith(buildAck({ code: 'AR', error: { hl7Code: code === 'CR_MLLP_FRAME_TOO_LARGE' ? 207 : 100, code, text } }));
    };

    const drain = async (): Promise<void> => {
      handling = true;
      clearTimeout(timer);
      socket.pause();
      while (queue.length > 0 && !socket.destroyed) {
        const payload = queue.shift()!;
        let answer: MllpAnswer;
        try {
          answer = await options.onMessage(payload, source);
        } catch (err) {
          log.error({ ip, err: { name: (err as Error).name } }, 'MLLP message handler failed');
          answer = { ack: handlerFailed(payload) };
        }
        if (answer.close) {
          handling = false;
          if (!socket.destroyed) endWith(answer.ack);
          return;
        }
        // A partner that left before its ACK resends; the same MSH-10 gets the same envelope.
        if (!socket.destroyed && socket.writable) socket.write(frame(answer.ack));
      }
      handling = false;
      if (socket.destroyed) return;
      if (framingError) return nak(framingError);
      socket.resume();
      arm();
    };

    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      const wasInFrame = decoder.inFrame;
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'error') framingError = event.code;
        else queue.push(event.payload);
      }
      if (decoder.inFrame && (!wasInFrame || queue.length > 0)) frameStarted = Date.now();
      if (queue.length > 0 && !handling) {
        const run = drain().finally(() => busy.delete(run));
        busy.add(run);
      } else if (framingError && !handling) nak(framingError);
      // Only a frame start moves the deadline: CR/LF filler between frames does not keep a connection open.
      else if (decoder.inFrame && !handling) arm();
    });
    socket.on('error', (err: Error & { code?: string }) => log.debug({ ip, code: err.code }, 'MLLP connection error'));
    socket.on('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
    });
    arm();
  };

  // A handler that failed: AE (CE in enhanced mode) for the message it was given, in its own encoding characters when it parses.
  const handlerFailed = (payload: Buffer): Buffer => {
    let to: ParsedHl7 | undefined;
    try {
      to = parseHl7(payload);
    } catch {
      to = undefined;
    }
    const error = { hl7Code: 207, code: 'CR_MLLP_UNAVAILABLE', text: 'the message could not be relayed now; resend later' };
    return buildAck({ ...(to ? { to } : {}), code: to?.enhanced ? 'CE' : 'AE', error });
  };

  const server: Server = options.tls
    ? createTlsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          requestCert: true,
          rejectUnauthorized: Boolean(options.tls.ca),
          ...(options.tls.ca ? { ca: options.tls.ca } : {}),
          minVersion: 'TLSv1.2',
          ciphers: options.tls.ciphers ?? DEFAULT_TLS_CIPHERS,
          honorCipherOrder: true,
          // A connection that never completes its handshake holds a slot no longer than a slow frame may.
          handshakeTimeout: options.frameTimeoutMs,
        },
        onConnection,
      )
    : createNetServer();
  server.maxConnections = options.maxConnections;
  // What takes an accepted TCP connection: the TLS server's own 'connection' listener (which starts
  // the handshake), or onConnection on plain TCP. Taken off the event so that a connection refused
  // below is never handed on: no handshake starts, and no handshake failure is logged for it.
  const accept = options.tls ? server.listeners('connection') : [onConnection];
  server.removeAllListeners('connection');
  // TCP connections per source address, TLS handshakes in progress included; and, for an address
  // over its limit, when its refusals were last logged and how many came since (one line a minute
  // at most, so a connection flood does not flood the log). Both hold only addresses with a connection open.
  const perAddress = new Map<string, number>();
  const refusals = new Map<string, { loggedAt: number; since: number }>();
  const logRefusals = (ip: string, refused: number): void =>
    log.warn({ ip, limit: options.maxConnectionsPerAddress, refused }, 'MLLP connection refused: too many connections from this address');
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    const open = perAddress.get(ip) ?? 0;
    if (open >= options.maxConnectionsPerAddress) {
      // Refused before a byte is read or a handshake starts, as over maxConnections.
      socket.destroy();
      const r = refusals.get(ip);
      if (r && Date.now() - r.loggedAt < REFUSALS_LOGGED_EVERY_MS) r.since++;
      else {
        logRefusals(ip, (r?.since ?? 0) + 1);
        refusals.set(ip, { loggedAt: Date.now(), since: 0 });
      }
      return;
    }
    perAddress.set(ip, open + 1);
    log.debug({ ip }, 'MLLP connection accepted');
    raw.add(socket);
    socket.once('close', () => {
      raw.delete(socket);
      const left = (perAddress.get(ip) ?? 1) - 1;
      if (left > 0) return void perAddress.set(ip, left);
      perAddress.delete(ip);
      const r = refusals.get(ip);
      refusals.delete(ip);
      if (r && r.since > 0) logRefusals(ip, r.since);
    });
    for (const take of accept) take.call(server, socket);
  });
  // A client certificate the CA check refuses ends the handshake without an error of its own: say why.
  // With a listener here Node leaves the socket open (a handshake timeout included): close it.
  server.on('tlsClientError', (err: Error & { code?: string }, socket?: TLSSocket) => {
    log.info({ code: err.code, ...(socket?.authorizationError ? { certificate: String(socket.authorizationError) } : {}) }, 'MLLP TLS handshake failed');
    socket?.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, tls: Boolean(options.tls) }, 'MLLP listener started');
  return {
    port,
    async close(deadlineMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      await Promise.race([Promise.allSettled([...busy]), deadline]);
      for (const s of sockets) s.destroy();
      for (const s of raw) s.destroy();
      await closed;
    },
  };
}
