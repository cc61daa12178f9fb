// EMR delivery over MLLP against a scripted EMR on loopback: aborts are honoured while
// connecting and while queued behind another delivery; a second ACK for a message already
// answered (enhanced mode: commit ACK, then application ACK) is discarded; an AR/CR the EMR
// could not address (empty MSA-2) is a rejection.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { createMllpClient, type MllpClient } from '../../../services/interface/delivery/mllpClient.ts';
import { MllpConnection } from '../../../services/interface/mllp/connection.ts';
import { FrameDecoder, frame } from '../../../services/interface/mllp/frame.ts';
import { buildAck, parseHl7, type ParsedHl7 } from '../../../services/interface/mllp/hl7.ts';
import { makeSelfSignedCert } from '../../helpers/tls.ts';
import { waitFor } from '../../helpers/wait.ts';

const hl7 = (controlId: string, extra = ''): string => `MSH|^~\\&|CARE|APP|EMR|HOSP|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1${extra}\rPID|1||42^^^HOSP^MR||Doe^Jane\r`;
const update = (controlId: string, extra = ''): Envelope =>
  buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: hl7(controlId, extra) });
const never = new AbortController().signal;

/** A scripted EMR: `answer` decides what is written back for each message received. */
interface Emr {
  port: number;
  received: string[];
  connections: Socket[];
  answer: (socket: Socket, message: ParsedHl7) => void;
}

let server: Server | undefined;
let client: MllpClient | undefined;
let connection: MllpConnection | undefined;
afterEach(async () => {
  client?.close();
  connection?.close();
  client = undefined;
  connection = undefined;
  if (server) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
});

/** Starts an EMR; `wrap` may hold the raw socket (e.g. to start TLS later) and returns the socket to read. */
async function emr(wrap?: (raw: Socket) => Promise<Socket>): Promise<Emr> {
  const state: Emr = { port: 0, received: [], connections: [], answer: (s, m) => s.write(frame(buildAck({ to: m, code: 'AA' }))) };
  server = createServer((raw) => {
    state.connections.push(raw);
    raw.on('error', () => undefined);
    void (wrap ? wrap(raw) : Promise.resolve(raw)).then((socket) => {
      const decoder = new FrameDecoder(1 << 20);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        for (const e of decoder.push(chunk)) {
          if (e.kind !== 'message') continue;
          const message = parseHl7(e.payload);
          state.received.push(message.controlId);
          state.answer(socket, message);
        }
      });
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as { port: number }).port;
  return state;
}

describe('MLLP connection: aborts', () => {
  let dir: string;
  let tls: { cert: Buffer; key: Buffer };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mllp-conn-'));
    const made = await makeSelfSignedCert(dir, 'emr');
    tls = { cert: made.cert, key: await readFile(made.keyFile) };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** An EMR that starts TLS only when the test calls `handshake()`: the client is mid-connect until then; and a connection to it. */
  async function heldHandshake() {
    const held: { handshake?: () => void } = {};
    const e = await emr(
      (raw) =>
        new Promise<Socket>((resolve) => {
          held.handshake = () => resolve(new TLSSocket(raw, { isServer: true, cert: tls.cert, key: tls.key }));
        }),
    );
    const conn = new MllpConnection({ host: '127.0.0.1', port: e.port, tls: { ca: tls.cert, servername: 'localhost' }, connectTimeoutMs: 5_000 });
    connection = conn;
    return { e, held, conn };
  }

  it('an abort that lands while the connection is being opened ends the exchange: the message is not written', async () => {
    const { e, held, conn } = await heldHandshake();
    const abort = new AbortController();
    const first = conn.exchange(Buffer.from(hl7('aborted-1')), 5_000, abort.signal, 'aborted-1');
    await waitFor(() => held.handshake, { what: 'the EMR to hold the connection' });
    abort.abort();
    held.handshake!();
    expect(await first).toEqual({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
    // The same connection carries the next message; the aborted one never reached the EMR.
    const second = await conn.exchange(Buffer.from(hl7('after-1')), 5_000, never, 'after-1');
    expect(second.kind).toBe('answer');
    expect(e.received).toEqual(['after-1']);
    expect(e.connections).toHaveLength(1);
  });

  it('close() while the connection is being opened: the exchange ends, and the socket, once open, is closed', async () => {
    const { e, held, conn } = await heldHandshake();
    const pending = conn.exchange(Buffer.from(hl7('closing-1')), 5_000, never, 'closing-1');
    await waitFor(() => held.handshake, { what: 'the EMR to hold the connection' });
    conn.close();
    held.handshake!();
    expect(await pending).toEqual({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
    await waitFor(() => e.connections[0]!.destroyed, { what: 'the socket opened after close() to be closed' });
    expect(e.received).toEqual([]);
  });

  it('a delivery queued behind another ends as soon as its signal aborts, not when the other ends', async () => {
    const e = await emr();
    e.answer = () => undefined; // the EMR never answers: the first exchange holds the connection
    connection = new MllpConnection({ host: '127.0.0.1', port: e.port, connectTimeoutMs: 5_000 });
    let firstSettled = false;
    const first = connection.exchange(Buffer.from(hl7('slow-1')), 4_000, never, 'slow-1').finally(() => (firstSettled = true));
    const abort = new AbortController();
    const queued = connection.exchange(Buffer.from(hl7('queued-1')), 4_000, abort.signal, 'queued-1');
    await waitFor(() => e.received.length === 1, { what: 'the first message at the EMR' });
    abort.abort();
    expect(await queued).toEqual({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
    expect(firstSettled).toBe(false);
    connection.close();
    expect(await first).toEqual({ kind: 'failed', reason: 'CR_MLLP_CLOSED' });
    expect(e.received).toEqual(['slow-1']);
  });
});

describe('MLLP delivery: acknowledgements', () => {
  it('enhanced mode: the application ACK after the commit ACK is discarded, not read as the next delivery’s answer', async () => {
    const e = await emr();
    let previous: ParsedHl7 | undefined;
    // Each message gets its commit ACK (CA), preceded by the previous message's application ACK (AA).
    e.answer = (socket, message) => {
      const late = previous ? frame(buildAck({ to: previous, code: 'AA' })) : Buffer.alloc(0);
      socket.write(Buffer.concat([late, frame(buildAck({ to: message, code: 'CA' }))]));
      previous = message;
    };
    client = createMllpClient({ host: '127.0.0.1', port: e.port, connectTimeoutMs: 2_000, ackTimeoutMs: 2_000, maxAttempts: 3 });
    const outcomes = [];
    for (const id of ['enh-1', 'enh-2', 'enh-3']) outcomes.push(await client.deliver(update(id, '|||AL|AL'), never));
    expect(outcomes).toEqual([1, 2, 3].map(() => ({ kind: 'delivered', ackCode: 'CA' })));
    expect(e.connections).toHaveLength(1);
  });

  it('a commit ACK and application ACK in one write: both read, the second discarded, the connection kept', async () => {
    const e = await emr();
    e.answer = (socket, message) => socket.write(Buffer.concat([frame(buildAck({ to: message, code: 'CA' })), frame(buildAck({ to: message, code: 'AA' }))]));
    client = createMllpClient({ host: '127.0.0.1', port: e.port, connectTimeoutMs: 2_000, ackTimeoutMs: 2_000, maxAttempts: 3 });
    expect(await client.deliver(update('pair-1', '|||AL|AL'), never)).toEqual({ kind: 'delivered', ackCode: 'CA' });
    expect(await client.deliver(update('pair-2', '|||AL|AL'), never)).toEqual({ kind: 'delivered', ackCode: 'CA' });
    expect(e.connections).toHaveLength(1);
  });

  it('AR and CR with an empty MSA-2 (the EMR could not read the message) are rejections, dead-lettered; an empty MSA-2 on AA is still a mismatch', async () => {
    const e = await emr();
    let code: 'AR' | 'CR' | 'AA' = 'AR';
    e.answer = (socket) => socket.write(frame(buildAck({ code, error: { hl7Code: 100, code: 'X', text: 'cannot read' } })));
    client = createMllpClient({ host: '127.0.0.1', port: e.port, connectTimeoutMs: 2_000, ackTimeoutMs: 2_000, maxAttempts: 3 });
    expect(await client.deliver(update('blank-1'), never)).toEqual({ kind: 'rejected', reason: 'CR_MLLP_ACK_AR', ackCode: 'AR' });
    code = 'CR';
    expect(await client.deliver(update('blank-2'), never)).toEqual({ kind: 'rejected', reason: 'CR_MLLP_ACK_CR', ackCode: 'CR' });
    code = 'AA';
    expect(await client.deliver(update('blank-3'), never)).toEqual({ kind: 'transient', reason: 'CR_MLLP_ACK_MISMATCH' });
  });
});
