// The partner MLLP listener on loopback, with a stub handler: slots are not held by filler or
// by TLS handshakes that never start, close() ends every connection at its deadline, a
// failing handler is answered for the message it failed on, and frames before a framing
// error are answered first.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAck, parseHl7 } from '../../../services/interface/mllp/hl7.ts';
import { startMllpListener, type MllpAnswer, type MllpListener, type MllpListenerOptions } from '../../../services/interface/mllp/listener.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { makeSelfSignedCert } from '../../helpers/tls.ts';
import { waitFor } from '../../helpers/wait.ts';

const VT = '\x0b';
const FS_CR = '\x1c\r';
const oru = (controlId: string, sep = '|', extra = ''): string =>
  `MSH|^~\\&|LIS|NORTH|CARE|RELAY|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1${extra}\rPID|1||77^^^NORTH^MR||Testperson^Alvina\r`.replaceAll('|', sep);
const framed = (s: string): string => `${VT}${s}${FS_CR}`;

/** Answers AA to every message it can read (never throws unless told to). */
let handler: (payload: Buffer) => Promise<MllpAnswer> = async (payload) => ({ ack: buildAck({ to: parseHl7(payload), code: 'AA' }) });
const logs = captureLogger('interface');
let listener: MllpListener | undefined;

async function listen(options: Partial<MllpListenerOptions> = {}): Promise<MllpListener> {
  listener = await startMllpListener({
    port: 0,
    host: '127.0.0.1',
    maxFrameBytes: 65_536,
    frameTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    maxConnections: 10,
    maxConnectionsPerAddress: 10,
    onMessage: (payload) => handler(payload),
    logger: logs.logger,
    ...options,
  });
  return listener;
}

/** A raw TCP peer that records every framed answer and when the connection closed. */
interface Peer {
  socket: Socket;
  answers: () => string[];
  closed: () => boolean;
}

async function peer(port: number, localAddress?: string): Promise<Peer> {
  const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  let got = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return {
    socket,
    answers: () => got.split(FS_CR).filter((f) => f.startsWith(VT)).map((f) => f.slice(1)),
    closed: () => closed,
  };
}

const msa = (ack: string): string[] => (ack.split('\r').find((s) => s.startsWith('MSA')) ?? '').split(ack.charAt(3));

afterEach(async () => {
  await listener?.close(100);
  listener = undefined;
  handler = async (payload) => ({ ack: buildAck({ to: parseHl7(payload), code: 'AA' }) });
});

describe('MLLP listener', () => {
  it('CR/LF filler between frames does not keep an idle connection open', async () => {
    const l = await listen({ idleTimeoutMs: 400 });
    const p = await peer(l.port);
    const started = Date.now();
    // Filler every 100 ms, well inside the idle timeout, until the listener closes the connection.
    const filler = setInterval(() => p.socket.writable && p.socket.write('\r\n'), 100);
    try {
      await waitFor(() => p.closed(), { timeoutMs: 3_000, what: 'the idle connection to close despite the filler' });
    } finally {
      clearInterval(filler);
    }
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(logs.entries().some((e) => e.msg === 'MLLP connection closed' && e.reason === 'idle')).toBe(true);
  });

  it('a handled message re-arms the idle timer (the connection stays usable after it)', async () => {
    const l = await listen({ idleTimeoutMs: 400 });
    const p = await peer(l.port);
    p.socket.write(framed(oru('keep-1')));
    await waitFor(() => p.answers().length === 1, { what: 'the first ACK' });
    p.socket.write(framed(oru('keep-2')));
    await waitFor(() => p.answers().length === 2, { what: 'the second ACK' });
    expect(msa(p.answers()[1]!)[2]).toBe('keep-2');
  });

  it('when the handler throws, the AE names the message (MSA-2 = its MSH-10) in its own encoding characters', async () => {
    handler = async () => {
      throw new Error('Testperson^Alvina');
    };
    const l = await listen();
    const p = await peer(l.port);
    p.socket.write(framed(oru('boom-1', '#')));
    p.socket.write(framed(oru('boom-2', '|', '|||AL|NE')));
    await waitFor(() => p.answers().length === 2, { what: 'two ACKs' });
    const [first, second] = p.answers();
    expect(first!.slice(0, 8)).toBe('MSH#^~\\&');
    expect(msa(first!).slice(0, 3)).toEqual(['MSA', 'AE', 'boom-1']);
    expect(first).toContain('CR_MLLP_UNAVAILABLE');
    // Enhanced mode (MSH-15 valued): CE.
    expect(msa(second!).slice(0, 3)).toEqual(['MSA', 'CE', 'boom-2']);
    expect(logs.lines.some((l) => l.includes('Alvina'))).toBe(false);
  });

  it('frames complete before a framing error in the same chunk are handled and acknowledged, then the error is answered', async () => {
    const l = await listen();
    const p = await peer(l.port);
    p.socket.write(framed(oru('before-1')) + framed(oru('before-2')) + 'GET / HTTP/1.1\r\n');
    await waitFor(() => p.closed(), { what: 'the connection to close after the framing error' });
    const answers = p.answers();
    expect(answers.map((a) => msa(a).slice(1, 3))).toEqual([
      ['AA', 'before-1'],
      ['AA', 'before-2'],
      ['AR', ''],
    ]);
    expect(answers[2]).toContain('CR_MLLP_FRAME_INVALID');
  });

  it('one source address holds at most maxConnectionsPerAddress connections; other addresses still get in, and a closed one frees its slot', async () => {
    const l = await listen({ maxConnectionsPerAddress: 2 });
    const before = logs.entries().length;
    const refusedLines = () => logs.entries().slice(before).filter((e) => e.msg === 'MLLP connection refused: too many connections from this address' && e.ip === '127.0.0.1' && e.limit === 2);
    const [a, b] = [await peer(l.port), await peer(l.port)];
    a.socket.write(framed(oru('a-1')));
    b.socket.write(framed(oru('b-1')));
    await waitFor(() => a.answers().length === 1 && b.answers().length === 1, { what: 'both connections answered' });
    const c = await peer(l.port);
    c.socket.write(framed(oru('c-1')));
    await waitFor(() => c.closed(), { what: 'the third connection from the address to be closed' });
    expect(c.answers()).toEqual([]);
    expect(refusedLines().map((e) => e.refused)).toEqual([1]);
    // Further refusals within the minute are counted, not logged one by one.
    for (const extra of [await peer(l.port), await peer(l.port)]) await waitFor(() => extra.closed(), { what: 'a further connection from the address to be closed' });
    expect(refusedLines()).toHaveLength(1);
    // Another address is not held back by this one.
    const other = await peer(l.port, '127.0.0.2');
    other.socket.write(framed(oru('other-1')));
    await waitFor(() => other.answers().length === 1, { what: 'the other address answered' });
    expect(msa(other.answers()[0]!).slice(1, 3)).toEqual(['AA', 'other-1']);
    // Once the listener has seen a connection close, its slot takes a new one.
    b.socket.destroy();
    let next: Peer | undefined;
    await waitFor(async () => {
      const d = await peer(l.port);
      d.socket.write(framed(oru('d-1')));
      await waitFor(() => d.closed() || d.answers().length === 1, { what: 'an answer or the close' });
      if (d.answers().length === 1) next = d;
      else d.socket.destroy();
      return next !== undefined;
    }, { what: 'a new connection from the address to be accepted once one closed' });
    expect(msa(next!.answers()[0]!).slice(1, 3)).toEqual(['AA', 'd-1']);
    expect(a.closed()).toBe(false);
    // When the address has no connection left, the refusals not yet logged are, in one line.
    a.socket.destroy();
    next!.socket.destroy();
    const lines = await waitFor(() => (refusedLines().length === 2 ? refusedLines() : undefined), { what: 'the count of refusals not yet logged' });
    expect(lines[1]!.refused).toBeGreaterThanOrEqual(2);
  });
});

describe('MLLP listener on TLS', () => {
  let dir: string;
  let tls: { cert: Buffer; key: Buffer };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mllp-listener-'));
    const made = await makeSelfSignedCert(dir, 'server');
    tls = { cert: made.cert, key: await readFile(made.keyFile) };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a TCP connection that never starts its TLS handshake is closed after the frame timeout', async () => {
    const l = await listen({ tls, frameTimeoutMs: 300 });
    const p = await peer(l.port);
    const started = Date.now();
    await waitFor(() => p.closed(), { timeoutMs: 5_000, what: 'the silent TLS connection to close' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a TLS handshake not yet started counts against its address: a second connection from it is refused at once', async () => {
    const l = await listen({ tls, frameTimeoutMs: 60_000, maxConnectionsPerAddress: 1 });
    const before = logs.entries().length;
    const first = await peer(l.port);
    const second = await peer(l.port);
    await waitFor(() => second.closed(), { what: 'the second connection from the address to be closed' });
    expect(first.closed()).toBe(false);
    expect(logs.entries().slice(before).some((e) => e.msg === 'MLLP connection refused: too many connections from this address' && e.limit === 1)).toBe(true);
    // The refused connection was never handed to TLS: no handshake failure is logged for it.
    expect(logs.entries().slice(before).filter((e) => e.msg === 'MLLP TLS handshake failed')).toEqual([]);
  });

  it('close(deadline) ends a connection whose TLS handshake never started, at the deadline', async () => {
    const l = await listen({ tls, frameTimeoutMs: 60_000 });
    const before = logs.lines.length;
    const p = await peer(l.port);
    await waitFor(() => logs.entries().slice(before).some((e) => e.msg === 'MLLP connection accepted'), { what: 'the listener to accept the connection' });
    const started = Date.now();
    await l.close(200);
    listener = undefined;
    expect(Date.now() - started).toBeLessThan(2_000);
    await waitFor(() => p.closed(), { what: 'the pre-handshake connection to be closed' });
  });
});
