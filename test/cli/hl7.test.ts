import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMllpSink, type MllpSink } from '../../services/devtools/mllpSink.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
let dir: string;
let sink: MllpSink;

// Asynchronous: the sink answers in this process, so the CLI must not block the event loop.
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [main, 'hl7', ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-cli-hl7-'));
  sink = await startMllpSink();
  // Written with LF line ends, as an editor would: the CLI sends CR-separated segments.
  await writeFile(join(dir, 'oru.hl7'), 'MSH|^~\\&|LIS|LAB|CARE|RELAY|2026||ORU^R01|CLI-1|P|2.5.1\nPID|1||9||Testperson^Alvina\n');
  await writeFile(join(dir, 'bad.hl7'), 'hello\n');
});
afterAll(async () => {
  await sink.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('care-relay hl7 send', () => {
  it('sends the file over MLLP with CR segment separators and prints the ACK; exit 0 on AA', async () => {
    const r = await cli('send', join(dir, 'oru.hl7'), '--to', `127.0.0.1:${sink.port}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^MSH\|/);
    expect(r.stdout).toContain('MSA|AA|CLI-1');
    expect(sink.deliveries.get('CLI-1')!.body.toString('latin1')).toBe('MSH|^~\\&|LIS|LAB|CARE|RELAY|2026||ORU^R01|CLI-1|P|2.5.1\rPID|1||9||Testperson^Alvina\r');
  });

  it('exits 1 on a negative ACK and when nothing answers; 2 for a file that is not HL7 or a bad --to', async () => {
    sink.setMode({ kind: 'AR', count: 1 });
    const rejected = await cli('send', join(dir, 'oru.hl7'), '--to', `127.0.0.1:${sink.port}`);
    expect(rejected.code).toBe(1);
    expect(rejected.stdout).toContain('MSA|AR|CLI-1');
    sink.setMode({ kind: 'none', count: 1 });
    const silent = await cli('send', join(dir, 'oru.hl7'), '--to', `127.0.0.1:${sink.port}`, '--timeout', '300');
    expect(silent).toMatchObject({ code: 1 });
    expect(silent.stderr).toContain('CR_MLLP_ACK_TIMEOUT');
    expect((await cli('send', join(dir, 'bad.hl7'), '--to', `127.0.0.1:${sink.port}`)).code).toBe(2);
    expect((await cli('send', join(dir, 'oru.hl7'), '--to', 'nowhere')).code).toBe(2);
  });
});
