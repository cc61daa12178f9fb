import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// scripts/test-remote.sh must refuse, with one line naming the variable, before it runs
// anything against an endpoint nobody chose or nobody is serving.

const script = fileURLToPath(new URL('../../scripts/test-remote.sh', import.meta.url));

function run(env: Record<string, string>): { status: number | null; stderr: string } {
  const res = spawnSync('bash', [script], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: res.status, stderr: res.stderr };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('scripts/test-remote.sh', () => {
  it('refuses without SQS_ENDPOINT or AWS_REGION', () => {
    const res = run({});
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/set SQS_ENDPOINT .* or AWS_REGION/);
  });

  it('refuses a malformed AWS_REGION, SQS_ENDPOINT or DYNAMODB_ENDPOINT, naming it', () => {
    expect(run({ AWS_REGION: 'nowhere' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/^test:remote: AWS_REGION: /) });
    expect(run({ SQS_ENDPOINT: 'localhost:4566' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/^test:remote: SQS_ENDPOINT: expected an http\(s\) URL/) });
    expect(run({ SQS_ENDPOINT: 'http://127.0.0.1:4566', DYNAMODB_ENDPOINT: 'localhost:8000' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/^test:remote: DYNAMODB_ENDPOINT: expected an http\(s\) URL/) });
  });

  it('stops at once when nothing answers at SQS_ENDPOINT', async () => {
    const res = run({ SQS_ENDPOINT: `http://127.0.0.1:${await closedPort()}` });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/no answer from SQS_ENDPOINT/);
  });
});
