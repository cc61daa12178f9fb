// Partner intake over MLLP, through the real relay (SQS emulator, app inbox). The partner
// side is @medplum/hl7's MLLP connection (another implementation than the relay's), and
// hostile framing is written byte by byte from the MLLP specification.
import { Hl7Message } from '@medplum/core';
import { Hl7Connection } from '@medplum/hl7';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../../services/core/http/auth.ts';
import { hashId } from '../../../services/core/log/logger.ts';
import { loadInterfaceConfig } from '../../../services/interface/config.ts';
import { startInterfaceService } from '../../../services/interface/service.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { startStack, type TestStack } from '../../helpers/stack.ts';
import { readTrail } from '../../helpers/trail.ts';
import { waitFor } from '../../helpers/wait.ts';

let stack: TestStack;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mllp-intake-'));
  const partners = join(dir, 'partners.json');
  await writeFile(
    partners,
    JSON.stringify({
      tokens: [
        { name: 'north-lab', sha256: hashToken('unused-north'), allowCidrs: ['127.0.0.1/32', '::1'], rateLimitPerMinute: 1000, mllp: { sendingFacilities: ['NORTH'] } },
        { name: 'fhir-only', sha256: hashToken('unused-fhir'), allowCidrs: ['127.0.0.1/32', '::1'], contentTypes: ['application/fhir+json'], mllp: { sendingFacilities: ['FHIRONLY'] } },
        { name: 'slow-lane', sha256: hashToken('unused-slow'), allowCidrs: ['127.0.0.1/32', '::1'], rateLimitPerMinute: 2, mllp: { sendingFacilities: ['SLOW'] } },
      ],
    }),
  );
  stack = await startStack({ ifaceEnv: { PARTNERS_FILE: partners, MLLP_INTAKE_PORT: '0', MLLP_INTAKE_MAX_FRAME_BYTES: '4096', MLLP_INTAKE_FRAME_TIMEOUT_MS: '500', MLLP_INTAKE_IDLE_TIMEOUT_MS: '1500' } });
});
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

const port = (): number => stack.iface.mllp!.listener.port;

function oru(controlId: string, facility = 'NORTH', extra = ''): string {
  return `MSH|^~\\&|LIS|${facility}|CARE|RELAY|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1${extra}\rPID|1||77^^^NORTH^MR||Testperson^Alvina\rOBX|1|TX|note||a\\F\\b\r`;
}

async function partner(to = port()): Promise<Hl7Connection> {
  const socket = connect({ host: '127.0.0.1', port: to });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return new Hl7Connection(socket);
}

async function send(conn: Hl7Connection, text: string): Promise<{ code: string; controlId: string; envelopeId: string; err: string }> {
  const ack = await conn.sendAndWait(Hl7Message.parse(text), { returnAck: 'first', timeoutMs: 10_000 });
  const msa = ack.getSegment('MSA')!;
  return { code: msa.getField(1).toString(), controlId: msa.getField(2)?.toString() ?? '', envelopeId: msa.getField(3)?.toString() ?? '', err: ack.getSegment('ERR')?.getField(5)?.getComponent(1) ?? '' };
}

/** Raw bytes in, the first framed answer (or the close) out. */
function raw(bytes: Buffer, opts: { keepOpen?: boolean } = {}): Promise<{ answer: string; closed: boolean; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: port() });
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.includes(0x1c) && !opts.keepOpen) socket.end();
    });
    socket.on('close', () => resolve({ answer: got.toString('utf8'), closed: true, socket }));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

async function inboxHas(id: string): Promise<string> {
  const res = await waitFor(
    async () => {
      const r = await stack.app.server.inject({ method: 'GET', url: `/v1/inbox/${id}`, headers: { authorization: `Bearer ${stack.tokens.reader}` } });
      return r.statusCode === 200 ? r : undefined;
    },
    { what: 'record in the app inbox' },
  );
  return res.body;
}

describe('partner intake over MLLP', () => {
  it('answers AA with the envelope id in MSA-3 once the message is on SQS; the app receives the message as sent', async () => {
    const conn = await partner();
    try {
      const ack = await send(conn, oru('N-1'));
      expect(ack).toMatchObject({ code: 'AA', controlId: 'N-1' });
      expect(ack.envelopeId).toMatch(/^[0-9a-f-]{36}$/);
      expect(await inboxHas(ack.envelopeId)).toBe(oru('N-1'));
    } finally {
      await conn.close();
    }
  });

  it('enhanced mode (MSH-15 valued) gets CA', async () => {
    const conn = await partner();
    try {
      expect(await send(conn, oru('N-enh', 'NORTH', '|||AL|NE'))).toMatchObject({ code: 'CA', controlId: 'N-enh' });
    } finally {
      await conn.close();
    }
  });

  it('a resent MSH-10 gets the same envelope and is relayed once (its lines written again, marked copy); a different message under it is refused', async () => {
    const conn = await partner();
    try {
      const first = await send(conn, oru('N-dup'));
      const again = await send(conn, oru('N-dup'));
      expect(again).toEqual(first);
      const other = await send(conn, oru('N-dup').replace('Alvina', 'Other'));
      expect(other).toMatchObject({ code: 'AR', err: 'CR_MLLP_CONTROL_ID_REUSED' });
      const relayed = stack.logs.iface.entries().filter((e) => e.msg === 'relayed' && e.envelopeId === first.envelopeId);
      expect(relayed).toHaveLength(1);
      // The resend was answered from the claim: the first message's lines again, each with copy: true.
      const lines = (await readTrail(stack.env.iface.AUDIT_FILE!)).filter((l) => l.resourceId === first.envelopeId && (l.action === 'message.relayed' || l.action === 'submission.accepted'));
      expect(lines.map((l) => [l.action, (l.details as { copy?: boolean } | undefined)?.copy ?? false])).toEqual([
        ['message.relayed', false],
        ['submission.accepted', false],
        ['message.relayed', true],
        ['submission.accepted', true],
      ]);
      expect(lines[3]!.details).toMatchObject({ transport: 'mllp', copy: true });
    } finally {
      await conn.close();
    }
  });

  it('a resend to a second interface instance (the same state table) gets the same envelope and is relayed once', async () => {
    const logs = captureLogger('interface');
    const second = await startInterfaceService(loadInterfaceConfig(stack.env.iface), { logger: logs.logger, listen: false });
    const [a, b] = [await partner(), await partner(second.mllp!.listener.port)];
    try {
      const first = await send(a, oru('N-fleet'));
      expect(first).toMatchObject({ code: 'AA', controlId: 'N-fleet' });
      expect(await send(b, oru('N-fleet'))).toEqual(first);
      expect(await send(b, oru('N-fleet').replace('Alvina', 'Other'))).toMatchObject({ code: 'AR', err: 'CR_MLLP_CONTROL_ID_REUSED' });
      const relayed = [...stack.logs.iface.entries(), ...logs.entries()].filter((e) => e.msg === 'relayed' && e.envelopeId === first.envelopeId);
      expect(relayed).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
      await second.stop();
    }
  });

  it('refuses an unknown sending facility (then closes the connection), a partner not allowed HL7 v2, and the rate limit, with ERR', async () => {
    const stranger = await partner();
    try {
      expect(await send(stranger, oru('U-1', 'SOUTH'))).toMatchObject({ code: 'AR', controlId: 'U-1', err: 'CR_MLLP_PARTNER_UNKNOWN' });
    } finally {
      await stranger.close();
    }
    const conn = await partner();
    try {
      expect(await send(conn, oru('F-1', 'FHIRONLY'))).toMatchObject({ code: 'AR', err: 'CR_MLLP_CONTENT_NOT_ALLOWED' });
      expect(await send(conn, oru('S-1', 'SLOW'))).toMatchObject({ code: 'AA' });
      expect(await send(conn, oru('S-2', 'SLOW'))).toMatchObject({ code: 'AA' });
      expect(await send(conn, oru('S-3', 'SLOW'))).toMatchObject({ code: 'AE', err: 'CR_MLLP_RATE_LIMITED' });
    } finally {
      await conn.close();
    }
  });

  it('answers AE while emergency mode is on and relays nothing', async () => {
    await stack.iface.runtime.emergency.set(true, { actor: 'test' });
    const conn = await partner();
    try {
      expect(await send(conn, oru('E-1'))).toMatchObject({ code: 'AE', err: 'CR_MLLP_UNAVAILABLE' });
    } finally {
      await conn.close();
      await stack.iface.runtime.emergency.set(false, { actor: 'test' });
    }
  });

  it('a malformed message gets AR with an ERR segment and the connection stays usable', async () => {
    const frameOf = (s: string): Buffer => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'latin1'), Buffer.from([0x1c, 0x0d])]);
    const { answer } = await raw(Buffer.concat([frameOf('PID|1||x\r'), frameOf(oru('after-bad'))]), { keepOpen: false });
    expect(answer).toContain('MSA|AR|');
    expect(answer).toContain('CR_MLLP_MESSAGE_MALFORMED');
  });

  it('bytes outside a frame are answered AR and the connection is closed', async () => {
    const { answer, closed } = await raw(Buffer.from('GET / HTTP/1.1\r\n\r\n'), { keepOpen: true });
    expect(closed).toBe(true);
    expect(answer).toContain('CR_MLLP_FRAME_INVALID');
  });

  it('an oversize frame is refused as soon as it passes the limit, without waiting for its end', async () => {
    const { answer, closed } = await raw(Buffer.concat([Buffer.from([0x0b]), Buffer.from(oru('big')), Buffer.alloc(8192, 0x41)]), { keepOpen: true });
    expect(closed).toBe(true);
    expect(answer).toContain('CR_MLLP_FRAME_TOO_LARGE');
  });

  it('a slow sender that never finishes its frame, and an idle connection, are closed', async () => {
    const started = Date.now();
    const slow = await raw(Buffer.concat([Buffer.from([0x0b]), Buffer.from('MSH|^~\\&|')]), { keepOpen: true });
    expect(slow.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(1400);
    const idle = await raw(Buffer.alloc(0), { keepOpen: true });
    expect(idle.closed).toBe(true);
    expect(idle.answer).toBe('');
  });

  it('a partner that disconnects before its ACK loses nothing: the resend gets the same envelope', async () => {
    const socket = connect({ host: '127.0.0.1', port: port() });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.end(Buffer.concat([Buffer.from([0x0b]), Buffer.from(oru('gone-1')), Buffer.from([0x1c, 0x0d])]));
    const ref = hashId(stack.env.iface.HMAC_KEY!, 'gone-1');
    const first = await waitFor(() => stack.logs.iface.entries().find((e) => e.msg === 'MLLP submission accepted' && e.controlIdHash === ref), { what: 'message relayed after the partner left' });
    const conn = await partner();
    try {
      const resent = await send(conn, oru('gone-1'));
      expect(resent).toMatchObject({ code: 'AA', envelopeId: first.envelopeId });
      expect(await inboxHas(resent.envelopeId)).toBe(oru('gone-1'));
      expect(stack.logs.iface.entries().filter((e) => e.msg === 'relayed' && e.envelopeId === resent.envelopeId)).toHaveLength(1);
    } finally {
      await conn.close();
    }
  });
});
