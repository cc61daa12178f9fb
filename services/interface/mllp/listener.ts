import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { DEFAULT_TLS_CIPHERS } from '../../core/http/server.ts';
import { FrameDecoder, frame } from './frame.ts';
import { buildAck } from './hl7.ts';

/** Who sent a message: the source address and, on TLS, the client certificate's SHA-256 fingerprint. */
export interface MllpSource {
  /** Source address. */
  ip: string;
  /** Upper-case hex, no colons. */
  certSha256?: string;
}

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
  /** Milliseconds a started frame may take to arrive in full. */
  frameTimeoutMs: number;
  /** Milliseconds a connection may be idle between messages. */
  idleTimeoutMs: number;
  /** Connections open at once; more are refused. */
  maxConnections: number;
  /** Handles one whole message and returns the ACK bytes (unframed). */
  onMessage: (payload: Buffer, source: MllpSource) => Promise<Buffer>;
  /** Service logger (connection events, never content). */
  logger: Logger;
}

/** A running MLLP listener. */
export interface MllpListener {
  /** The port it listens on. */
  port: number;
  /** Stops accepting, lets in-flight messages finish (up to `deadlineMs`), then closes every connection. */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * The partner MLLP listener: frames are bounded in size and time, idle connections are
 * closed, messages on one connection are handled one at a time (the socket is paused
 * meanwhile), and a framing error is answered with an AR before the connection closes.
 */
export async function startMllpListener(options: MllpListenerOptions): Promise<MllpListener> {
  const log = options.logger;
  const sockets = new Set<Socket>();
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

    const arm = (): void => {
      clearTimeout(timer);
      if (handling) return;
      const wait = decoder.inFrame ? Math.max(0, frameStarted + options.frameTimeoutMs - Date.now()) : options.idleTimeoutMs;
      timer = setTimeout(() => {
        log.info({ ip, reason: decoder.inFrame ? 'frame-timeout' : 'idle' }, 'MLLP connection closed');
        socket.destroy();
      }, wait);
    };
    const nak = (code: 'CR_MLLP_FRAME_INVALID' | 'CR_MLLP_FRAME_TOO_LARGE'): void => {
      log.warn({ ip, code }, 'MLLP framing error; closing the connection');
      const text = code === 'CR_MLLP_FRAME_TOO_LARGE' ? `messages over ${options.maxFrameBytes} bytes are not accepted` : 'expected <VT>message<FS><CR> framing';
      socket.end(frame(buildAck({ code: 'AR', error: { hl7Code: code === 'CR_MLLP_FRAME_TOO_LARGE' ? 207 : 100, code, text } })));
      setTimeout(() => socket.destroy(), 1000).unref();
    };

    let queue: Buffer[] = [];
    const drain = async (): Promise<void> => {
      handling = true;
      clearTimeout(timer);
      socket.pause();
      while (queue.length > 0 && !socket.destroyed) {
        const payload = queue.shift()!;
        let ack: Buffer;
        try {
          ack = await options.onMessage(payload, source);
        } catch (err) {
          log.error({ ip, err: { name: (err as Error).name } }, 'MLLP message handler failed');
          ack = buildAck({ code: 'AE', error: { hl7Code: 207, code: 'CR_MLLP_UNAVAILABLE', text: 'the message could not be relayed now; resend later' } });
        }
        // A partner that left before its ACK resends; the same MSH-10 gets the same envelope.
        if (!socket.destroyed && socket.writable) socket.write(frame(ack));
      }
      handling = false;
      if (!socket.destroyed) {
        socket.resume();
        arm();
      }
    };

    socket.on('data', (chunk: Buffer) => {
      const wasInFrame = decoder.inFrame;
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'error') {
          queue = [];
          return nak(event.code);
        }
        queue.push(event.payload);
      }
      if (decoder.inFrame && (!wasInFrame || queue.length > 0)) frameStarted = Date.now();
      if (queue.length > 0 && !handling) {
        const run = drain().finally(() => busy.delete(run));
        busy.add(run);
      } else arm();
    });
    socket.on('error', (err: Error & { code?: string }) => log.debug({ ip, code: err.code }, 'MLLP connection error'));
    socket.on('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
    });
    arm();
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
        },
        onConnection,
      )
    : createNetServer(onConnection);
  server.maxConnections = options.maxConnections;
  // A client certificate the CA check refuses ends the handshake without an error of its own: say why.
  server.on('tlsClientError', (err: Error & { code?: string }, socket?: TLSSocket) =>
    log.info({ code: err.code, ...(socket?.authorizationError ? { certificate: String(socket.authorizationError) } : {}) }, 'MLLP TLS handshake failed'),
  );
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
      await closed;
    },
  };
}
