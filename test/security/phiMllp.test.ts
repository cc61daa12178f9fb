// PHI planted in HL7 v2 segments (PID-5 name, PID-19 SSN, PID-3 MRN, even MSH-10) and sent
// over MLLP both ways, through accepted, refused, resent and negatively acknowledged paths:
// none of it appears in any log line of either service or in any audit line.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../services/core/http/auth.ts';
import { startMllpSink, type MllpSink } from '../../services/devtools/mllpSink.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const NAME = 'Quatermaine^Zebulon';
const SSN = '078-05-1120';
const MRN = 'MRN-88231177';
const NEEDLES = ['Zebulon', 'Quatermaine', '88231177', SSN, '078051120', 'CTRL-Zebulon'];
const pid = `PID|1||${MRN}^^^HOSP^MR||${NAME}||19610417|M|||||||||||${SSN}`;
const msg = (controlId: string, facility = 'NORTH'): string => `MSH|^~\\&|LIS|${facility}|CARE|RELAY|20260101120000||ADT^A08|${controlId}|P|2.5.1\r${pid}\r`;

let stack: TestStack;
let emr: MllpSink;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-mllp-'));
  const partners = join(dir, 'partners.json');
  await writeFile(partners, JSON.stringify({ tokens: [{ name: 'north-lab', sha256: hashToken('unused'), allowCidrs: ['127.0.0.1/32', '::1'], mllp: { sendingFacilities: ['NORTH'] } }] }));
  emr = await startMllpSink();
  stack = await startStack({
    ifaceEnv: { PARTNERS_FILE: partners, MLLP_INTAKE_PORT: '0', EMR_MLLP_URL: `mllp://127.0.0.1:${emr.port}`, EMR_MLLP_PLAIN: 'true', EMR_MLLP_ACK_TIMEOUT_MS: '500', LOG_LEVEL: 'trace' },
  });
  stack.iface.server.log.level = 'trace';
  stack.app.server.log.level = 'trace';
});
afterAll(async () => {
  await stack?.stop();
  await emr?.stop();
  await rm(dir, { recursive: true, force: true });
});

function exchange(bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: stack.iface.mllp!.listener.port });
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('utf8');
      if (got.includes('\x1c')) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.write(bytes);
  });
}
const framed = (s: string): Buffer => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'utf8'), Buffer.from([0x1c, 0x0d])]);

describe('no PHI from HL7 segments in logs or audit lines', () => {
  it('plants PHI in PID-5, PID-19 and MSH-10 over MLLP intake and delivery and finds none of it', async () => {
    // Intake: accepted, resent, unknown partner, malformed, oversize framing, garbage.
    expect(await exchange(framed(msg('CTRL-Zebulon-1')))).toContain('MSA|AA|CTRL-Zebulon-1|');
    expect(await exchange(framed(msg('CTRL-Zebulon-1')))).toContain('MSA|AA|CTRL-Zebulon-1|');
    expect(await exchange(framed(msg('CTRL-Zebulon-2', 'SOUTH')))).toContain('MSA|AR|');
    expect(await exchange(framed(`${pid}\r`))).toContain('MSA|AR|');
    expect(await exchange(Buffer.from(`${pid}\r`))).toContain('CR_MLLP_FRAME_INVALID');

    // Delivery: AA, AE, AR, a mismatched ACK and a silent EMR, each with PHI in the chart update.
    const post = (controlId: string) =>
      stack.app.server.inject({
        method: 'POST',
        url: '/v1/chart-updates',
        headers: { authorization: `Bearer ${stack.tokens.writer}`, 'content-type': 'application/hl7-v2' },
        payload: msg(controlId),
      });
    const modes = [{ kind: 'AA' }, { kind: 'AE', count: 1 }, { kind: 'AR', count: 1 }, { kind: 'mismatch', count: 1 }, { kind: 'none', count: 1 }] as const;
    for (const [i, mode] of modes.entries()) {
      emr.setMode(mode);
      const controlId = `CTRL-Zebulon-d${i}`;
      expect((await post(controlId)).statusCode).toBe(202);
      await waitFor(() => emr.requests.some((r) => r.controlId === controlId), { what: `the EMR saw ${controlId}` });
    }
    emr.setMode({ kind: 'AA' });
    await waitFor(() => emr.deliveries.has('CTRL-Zebulon-d1') && emr.deliveries.has('CTRL-Zebulon-d4'), { timeoutMs: 30_000, what: 'retried deliveries' });

    const logLines = [...stack.logs.iface.lines, ...stack.logs.app.lines];
    const audit = (await Promise.all(['interface-audit.jsonl', 'app-audit.jsonl'].map((f) => readFile(join(stack.dir, f), 'utf8')))).join('\n');
    expect(logLines.some((l) => l.includes('MLLP submission accepted'))).toBe(true);
    expect(logLines.some((l) => l.includes('CR_MLLP_ACK_AE'))).toBe(true);
    expect(audit).toContain('CR_MLLP_PARTNER_UNKNOWN');
    for (const needle of NEEDLES) {
      expect(logLines.filter((l) => l.includes(needle))).toEqual([]);
      expect(audit.includes(needle)).toBe(false);
    }
  });
});
