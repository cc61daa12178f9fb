// docs/wire-format.md, followed word for word: its fenced `sh` blocks, in order, run with bash
// in an empty folder against the stack `npm start` runs (`care-relay dev`: the SQS emulator, both
// services, the EMR sink). They use only gpg, the AWS CLI, jq and curl, as a hospital integrator would.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runNode, type RunningProcess } from '../helpers/processes.ts';
import { waitDevReady } from '../helpers/devStack.ts';

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'wire-format.md');

/** The doc's fenced `sh` blocks, in order. */
export function shBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

let dir: string;
let dev: RunningProcess;
let ports: { iface: number; app: number; sink: number; sqs: number; mllp: number; mllpSink: number };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-wire-doc-'));
  ports = { iface: await freePort(), app: await freePort(), sink: await freePort(), sqs: await freePort(), mllp: await freePort(), mllpSink: await freePort() };
  dev = runNode('services/cli/main.ts', ['dev', '--data', join(dir, 'data'), '--keys', join(dir, 'keys'), '--ready-timeout', '150'], {
    INTERFACE_PORT: String(ports.iface),
    APP_PORT: String(ports.app),
    EMR_SINK_PORT: String(ports.sink),
    SQS_PORT: String(ports.sqs),
    MLLP_PORT: String(ports.mllp),
    EMR_MLLP_SINK_PORT: String(ports.mllpSink),
  });
  await waitDevReady(dev, 200_000, 'care-relay dev to be ready');
}, 240_000);

afterAll(async () => {
  await dev?.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('docs/wire-format.md', () => {
  it('has the steps as sh blocks that set up, seal, send, check, read and clean up', async () => {
    const blocks = shBlocks(await readFile(DOC, 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    expect(blocks[0]).toMatch(/^set -euo pipefail$/m);
    const all = blocks.join('\n');
    for (const tool of ['gpg ', 'sqs send-message', 'sqs receive-message', 'sqs delete-message', 'jq ']) expect(all).toContain(tool);
  });

  it('its shell steps, run word for word against the running dev stack, send a message the app accepts, read one the app sent and a large one\'s object in S3, leaving no plaintext behind', async () => {
    const blocks = shBlocks(await readFile(DOC, 'utf8'));
    const work = join(dir, 'work');
    await mkdir(work);
    const script = join(dir, 'wire-format.sh');
    await writeFile(script, blocks.join('\n'));
    const result = await bash(script, work, {
      KEYS: join(dir, 'keys'),
      SECRETS: join(dir, 'data', 'secrets.json'),
      APP_URL: `http://127.0.0.1:${ports.app}`,
      INTERFACE_URL: `http://127.0.0.1:${ports.iface}`,
      SQS_ENDPOINT: `http://127.0.0.1:${ports.sqs}`,
      AWS_ACCESS_KEY_ID: 'dev',
      AWS_SECRET_ACCESS_KEY: 'dev',
      AWS_DEFAULT_REGION: 'us-east-1',
      QUEUE_PREFIX: '',
    });
    // On a failure, the services' warnings and error responses name the cause (curl -S gives the status).
    const serviceProblems = dev.lines.filter((l) => /"level":(40|50|60)|"statusCode":[45]\d\d/.test(l)).slice(-40);
    const output = `${result.stdout}\n${result.stderr}\n--- the dev stack's warnings and error responses:\n${serviceProblems.join('\n')}`;
    expect(result.code, output).toBe(0);
    const accepted = /^accepted: ([0-9a-f-]{36})$/m.exec(result.stdout)?.[1];
    const read = /^read and verified: ([0-9a-f-]{36})$/m.exec(result.stdout)?.[1];
    expect(accepted, output).toBeDefined();
    expect(read, output).toBeDefined();
    // Step 6: a large chart update's object, fetched from S3 and decrypted by gpg alone.
    expect(/^large object read and verified: [0-9a-f-]{36}$/m.test(result.stdout), output).toBe(true);
    // The services saw the hand-made message as valid: no quarantine line in their output.
    expect(dev.lines.filter((l) => /quarantin/i.test(l) && l.includes('[app]'))).toEqual([]);
    // Nothing was left in the folder the steps ran from (the plaintext lived in a temporary one).
    expect(await readdir(work)).toEqual([]);
    // The interface consumer is switched back on: the emergency switch is off again.
    const admin = (JSON.parse(await readFile(join(dir, 'data', 'secrets.json'), 'utf8')) as { adminToken: string }).adminToken;
    const state = await fetch(`http://127.0.0.1:${ports.iface}/v1/admin/emergency`, { headers: { authorization: `Bearer ${admin}` } });
    expect(await state.json()).toMatchObject({ active: false });
  }, 300_000);
});
