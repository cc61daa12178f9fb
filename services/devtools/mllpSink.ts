// The demo EMR sink's MLLP side: an HL7 v2 receiver whose acknowledgements can be set.
// Written from the MLLP and HL7 v2 specifications on its own, sharing no code with the
// relay's MLLP implementation, so a framing bug in one cannot hide behind the other.
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

/** How the MLLP sink answers: an ACK code, no answer, a late answer, or a socket closed mid-message. */
export type MllpSinkMode =
  | { kind: 'AA' | 'CA' }
  | { kind: 'AE' | 'AR' | 'CE' | 'CR' | 'none' | 'close'; count?: number }
  | { kind: 'slow'; delayMs: number; count?: number }
  | { kind: 'mismatch'; count?: number };

/** One message the sink accepted (kept in memory only, never printed). */
export interface MllpSinkDelivery {
  /** MSH-10 of the message. */
  controlId: string;
  /** The message bytes as received (without framing). */
  body: Buffer;
  /** How many times this MSH-10 arrived and was answered AA (a resend after a lost ACK counts here). */
  attempts: number;
}

/** The MLLP receiver of the demo EMR sink. */
export interface MllpSink {
  /** Port it listens on. */
  port: number;
  /** Accepted messages by MSH-10. */
  deliveries: Map<string, MllpSinkDelivery>;
  /** Every message that arrived whole, with what was answered (`none`, `close` when nothing was). */
  requests: Array<{ controlId: string; answer: string }>;
  /** Connections accepted so far. */
  connections(): number;
  /** Sets how the next messages are answered. */
  setMode(mode: MllpSinkMode): void;
  /** Stops listening and closes every connection. */
  stop(): Promise<void>;
}

/** Options for {@link startMllpSink}. */
export interface MllpSinkOptions {
  /** Port (0 picks a free one). */
  port?: number;
  /** Address to listen on. */
  host?: string;
  /** Serve MLLP over TLS with this certificate; `ca` makes a client certificate mandatory. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** Called once per new accepted message, with metadata only. */
  onDelivery?: (delivery: { controlId: string; bytes: number }) => void;
}

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

function controlIdOf(message: Buffer): { controlId: string; sep: string; enc: string } {
  const text = message.toString('latin1');
  const msh = text.split(/\r|\n/)[0] ?? '';
  const sep = msh.charAt(3) || '|';
  // Split on the field separator: index 0 is "MSH", index 1 the encoding characters, index 9 is MSH-10.
  return { controlId: msh.split(sep)[9] ?? '', sep, enc: msh.split(sep)[1] ?? '^~\\&' };
}

function ack(code: string, controlId: string, sep: string, enc: string): Buffer {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const text = ['MSH', enc, 'EMR', 'HOSP', 'CARE', 'RELAY', stamp, '', 'ACK', `SINK${Date.now()}`, 'P', '2.5.1'].join(sep) + '\r' + ['MSA', code, controlId].join(sep) + '\r';
  const body = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from([VT]), body, Buffer.from([FS, CR])]);
}

/** Starts the MLLP receiver: each whole frame is answered as the current mode says. */
export async function startMllpSink(options: MllpSinkOptions = {}): Promise<MllpSink> {
  const deliveries = new Map<string, MllpSinkDelivery>();
  const requests: MllpSink['requests'] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  let mode: MllpSinkMode = { kind: 'AA' };
  const nextMode = (): MllpSinkMode => {
    const current = mode;
    if ('count' in current && current.count !== undefined) {
      const left = current.count - 1;
      mode = left > 0 ? { ...current, count: left } : { kind: 'AA' };
    }
    return current;
  };

  const onMessage = async (socket: Socket, message: Buffer): Promise<void> => {
    const { controlId, sep, enc } = controlIdOf(message);
    const current = nextMode();
    const answer = (code: string, id = controlId): void => {
      requests.push({ controlId, answer: code });
      if (!socket.destroyed) socket.write(ack(code, id, sep, enc));
    };
    const accept = (): void => {
      const existing = deliveries.get(controlId);
      if (existing) existing.attempts += 1;
      else {
        deliveries.set(controlId, { controlId, body: message, attempts: 1 });
        options.onDelivery?.({ controlId, bytes: message.length });
      }
    };
    switch (current.kind) {
      case 'none':
        requests.push({ controlId, answer: 'none' });
        return;
      case 'slow':
        await new Promise((resolve) => setTimeout(resolve, current.delayMs));
        accept();
        return answer('AA');
      case 'mismatch':
        return answer('AA', `${controlId}-other`);
      case 'AA':
      case 'CA':
        accept();
        return answer(current.kind);
      case 'close':
        return;
      default:
        return answer(current.kind);
    }
  };

  const onConnection = (socket: Socket): void => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      // Close mid-message: as soon as a frame starts while the mode says so, drop the connection.
      if (mode.kind === 'close' && chunk.includes(VT)) {
        const { controlId } = controlIdOf(chunk.subarray(chunk.indexOf(VT) + 1));
        nextMode();
        requests.push({ controlId, answer: 'close' });
        socket.destroy();
        return;
      }
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const start = buffer.indexOf(VT);
        const end = buffer.indexOf(Buffer.from([FS, CR]), start + 1);
        if (start === -1 || end === -1) break;
        const message = buffer.subarray(start + 1, end);
        buffer = buffer.subarray(end + 2);
        chain = chain.then(() => onMessage(socket, message)).catch(() => void socket.destroy());
      }
      if (buffer.length > 4 * 1024 * 1024) socket.destroy();
    });
  };

  const server: Server = options.tls
    ? createTlsServer({ cert: options.tls.cert, key: options.tls.key, ...(options.tls.ca ? { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true } : {}), minVersion: 'TLSv1.2' }, onConnection)
    : createNetServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    deliveries,
    requests,
    connections: () => accepted,
    setMode: (m) => {
      mode = m;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
