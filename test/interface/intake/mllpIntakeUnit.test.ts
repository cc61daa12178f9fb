// MLLP intake behind the real listener on loopback, with in-memory stand-ins for SQS and the
// state table and the service's real failed-authentication limiter: an unknown partner is
// answered, counted through the limiter (not one audit line per message) and disconnected;
// any valid MSH-1 is accepted; a missing MSH-10 is ERR-3 101.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { createAuthFailureLimiter, type AuthFailureLimiter } from '../../../services/core/http/authFailures.ts';
import type { Idempotency } from '../../../services/core/relay/idempotency.ts';
import type { Outbound } from '../../../services/core/relay/outbound.ts';
import type { EmergencySwitch } from '../../../services/core/runtime/emergency.ts';
import { createMllpIntake } from '../../../services/interface/intake/mllpIntake.ts';
import type { PartnerEntry } from '../../../services/interface/intake/partners.ts';
import { startMllpListener, type MllpListener } from '../../../services/interface/mllp/listener.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { waitFor } from '../../helpers/wait.ts';

const VT = '\x0b';
const FS_CR = '\x1c\r';
const oru = (controlId: string, facility = 'NORTH', sep = '|'): string =>
  `MSH|^~\\&|LIS|${facility}|CARE|RELAY|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rPID|1||77^^^NORTH^MR||Testperson^Alvina\r`.replaceAll('|', sep);
const framed = (s: string): string => `${VT}${s}${FS_CR}`;

const north = { name: 'north-lab', sha256: 'x', allowCidrs: ['127.0.0.1/32'], contentTypes: ['application/hl7-v2'], rateLimitPerMinute: 1000, mllp: { sendingFacilities: ['NORTH'] } } as unknown as PartnerEntry;

let listener: MllpListener | undefined;
let limiter: AuthFailureLimiter | undefined;
afterEach(async () => {
  await listener?.close(100);
  await limiter?.close();
  listener = undefined;
  limiter = undefined;
});

async function start(limit = 3): Promise<{ port: number; audit: AuditEvent[]; sent: string[]; logs: ReturnType<typeof captureLogger> }> {
  const audit: AuditEvent[] = [];
  const sent: string[] = [];
  const logs = captureLogger('interface');
  const sink = { record: async (e: AuditEvent) => void audit.push(e) };
  limiter = createAuthFailureLimiter({ audit: sink, limit, windowMs: 60_000 });
  const outbound = {
    send: async (p: { id: string }) => {
      sent.push(p.id);
      return p.id;
    },
    recordCopy: async () => undefined,
  } as unknown as Outbound;
  let n = 0;
  const idempotency: Idempotency = { run: async (_caller, _key, _body, _type, create) => ({ id: await create(`env-${++n}`), replayed: false, created: true }) };
  const onMessage = createMllpIntake({
    partners: { identify: (_peer, facility) => (facility === 'NORTH' ? north : undefined), reload: () => undefined },
    outbound,
    idempotency,
    authFailures: limiter,
    emergency: { active: false } as EmergencySwitch,
    logger: logs.logger,
    hmacKey: 'k'.repeat(32),
  });
  listener = await startMllpListener({ port: 0, host: '127.0.0.1', maxFrameBytes: 65_536, frameTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxConnections: 50, maxConnectionsPerAddress: 50, onMessage, logger: logs.logger });
  return { port: listener.port, audit, sent, logs };
}

/** Sends raw bytes on a new connection; resolves with every framed answer once the relay closes it. */
function exchange(port: number, bytes: string): Promise<{ answers: string[]; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve({ answers: got.split(FS_CR).filter((f) => f.startsWith(VT)).map((f) => f.slice(1)), socket }));
    socket.write(bytes);
  });
}

/** A connection kept open until the answers expected have arrived. */
async function ask(port: number, bytes: string, count: number): Promise<string[]> {
  const socket = connect({ host: '127.0.0.1', port });
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  socket.write(bytes);
  const answers = (): string[] => got.split(FS_CR).filter((f) => f.startsWith(VT)).map((f) => f.slice(1));
  try {
    return await waitFor(() => (answers().length >= count ? answers() : undefined), { what: `${count} answers` });
  } finally {
    socket.destroy();
  }
}

const msa = (ack: string): string[] => (ack.split('\r').find((s) => s.startsWith('MSA')) ?? '').split(ack.charAt(3));
const errCode = (ack: string): string => (ack.split('\r').find((s) => s.startsWith('ERR')) ?? '').split(ack.charAt(3))[5]?.split('^')[0] ?? '';
const err3 = (ack: string): string => (ack.split('\r').find((s) => s.startsWith('ERR')) ?? '').split(ack.charAt(3))[3]?.split('^')[0] ?? '';

describe('MLLP intake: unknown partners', () => {
  it('an unknown partner is answered AR and disconnected after that message; what followed on the connection is not read', async () => {
    const { port, sent } = await start();
    const { answers } = await exchange(port, framed(oru('U-1', 'SOUTH')) + framed(oru('N-after')));
    expect(answers.map((a) => msa(a).slice(1, 3))).toEqual([['AR', 'U-1']]);
    expect(errCode(answers[0]!)).toBe('CR_MLLP_PARTNER_UNKNOWN');
    expect(sent).toEqual([]);
  });

  it('a flood of unknown-partner messages goes through the shared limiter: one auth.failure line, the rest counted in the aggregated line', async () => {
    const { port, audit, logs } = await start(3);
    for (let i = 0; i < 8; i += 1) {
      const { answers } = await exchange(port, framed(oru(`U-${i}`, 'SOUTH')));
      // Past the limit the source is still answered AR and disconnected.
      expect(answers.map((a) => msa(a)[1])).toEqual(['AR']);
    }
    // Each message is in exactly one line's count; only the window's first is written at once.
    expect(audit.filter((e) => e.action === 'auth.failure')).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'auth.failure', actor: 'anonymous', resourceId: 'MLLP', sourceIp: '127.0.0.1', details: { reason: 'CR_MLLP_PARTNER_UNKNOWN', count: 1 } });
    await limiter!.close();
    limiter = undefined;
    expect(audit).toHaveLength(2);
    expect(audit[1]).toMatchObject({ action: 'auth.failure', details: { count: 7, refused: 5, reasons: 'CR_MLLP_PARTNER_UNKNOWN=2' } });
    // Warnings are bounded by the limit (those past it are counted, not logged), and hold no content.
    expect(logs.entries().filter((e) => e.code === 'CR_MLLP_PARTNER_UNKNOWN')).toHaveLength(3);
    expect(logs.lines.some((l) => l.includes('Alvina') || l.includes('U-1'))).toBe(false);
  });

  it('a known partner from the same address is still served while strangers are over the limit', async () => {
    const { port, sent } = await start(1);
    for (let i = 0; i < 3; i += 1) await exchange(port, framed(oru(`U-${i}`, 'SOUTH')));
    const [ack] = await ask(port, framed(oru('N-1')), 1);
    expect(msa(ack!).slice(1, 3)).toEqual(['AA', 'N-1']);
    expect(sent).toHaveLength(1);
  });
});

describe('MLLP intake: what a message may look like', () => {
  it('a UTF-8 message whose field separator is not | is accepted (any valid MSH-1), answered in its own separators', async () => {
    const { port, sent } = await start();
    const [ack] = await ask(port, framed(oru('HASH-1', 'NORTH', '#')), 1);
    expect(ack!.slice(0, 8)).toBe('MSH#^~\\&');
    expect(msa(ack!).slice(1, 4)).toEqual(['AA', 'HASH-1', 'env-1']);
    expect(sent).toEqual(['env-1']);
  });

  it('a message without MSH-10 is refused AR with ERR-3 101 (required field missing); other malformed ones 100', async () => {
    const { port } = await start();
    const [missing, broken] = await ask(port, framed(oru('')) + framed('MSH|^~\\&|LIS|NORTH\rPID|1\r'), 2);
    expect(msa(missing!)[1]).toBe('AR');
    expect([errCode(missing!), err3(missing!)]).toEqual(['CR_MLLP_MESSAGE_MALFORMED', '101']);
    expect([errCode(broken!), err3(broken!)]).toEqual(['CR_MLLP_MESSAGE_MALFORMED', '101']);
    const [notHl7] = await ask(port, framed('MSH|^^^^|x\r'), 1);
    expect([errCode(notHl7!), err3(notHl7!)]).toEqual(['CR_MLLP_MESSAGE_MALFORMED', '100']);
  });
});
