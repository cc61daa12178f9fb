// The TLS cipher list, probed with `openssl s_client`: by default TLS 1.2 offers only ECDHE
// key exchange (forward secrecy) with AEAD ciphers, and TLS 1.3 its standard suites; a
// client offering RSA key exchange (AES128-SHA) or CBC is refused. TLS_CIPHERS changes it.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../services/core/http/server.ts';
import { tlsOf } from '../../services/core/runtime/serviceServer.ts';
import { loadInterfaceConfig } from '../../services/interface/config.ts';
import { captureLogger } from '../helpers/logs.ts';
import { makeSelfSignedCert } from '../helpers/tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'cr-tls-ciphers-'));
let files: { certFile: string; keyFile: string };
/** An RSA certificate too: with it, a server could agree to RSA key exchange (AES128-SHA). */
const rsa = { certFile: join(dir, 'rsa-cert.pem'), keyFile: join(dir, 'rsa-key.pem') };
const servers: FastifyInstance[] = [];

async function serve(ciphers?: string, cert = files): Promise<number> {
  const app = createHttpServer({ logger: captureLogger('tls').logger, bodyLimit: 1024, tls: { ...cert, ciphers } });
  app.get('/healthz', async () => ({ ok: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(app);
  return (app.server.address() as { port: number }).port;
}

/** One `openssl s_client` handshake (async: the server runs in this process); the negotiated cipher, or null when refused. */
function handshake(port: number, args: string[]): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.resume();
    child.stdin.end();
    child.on('error', reject);
    child.on('close', (code) => resolve(code === 0 ? (/Cipher is (\S+)/.exec(out)?.[1] ?? null) : null));
  });
}

beforeAll(async () => {
  files = await makeSelfSignedCert(dir);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', rsa.keyFile, '-out', rsa.certFile], { stdio: 'ignore' });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS cipher list (openssl s_client)', () => {
  it('by default refuses TLS 1.2 RSA key exchange (AES128-SHA) and CBC, and accepts ECDHE with AEAD and TLS 1.3', async () => {
    const port = await serve();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'AES128-SHA'])).toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'AES256-GCM-SHA384']), 'RSA key exchange even with GCM').toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA']), 'ECDHE with CBC').toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256']), 'ECDHE with CBC-SHA256').toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'])).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'])).toBe('ECDHE-ECDSA-CHACHA20-POLY1305');
    expect(await handshake(port, ['-tls1_3'])).toMatch(/^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
  });

  it('regression: with an RSA certificate, TLS 1.2 no longer accepts AES128-SHA (RSA key exchange, no forward secrecy)', async () => {
    const port = await serve(undefined, rsa);
    expect(await handshake(port, ['-tls1_2', '-cipher', 'AES128-SHA'])).toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'AES128-GCM-SHA256'])).toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA'])).toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'])).toBe('ECDHE-RSA-AES128-GCM-SHA256');
  });

  it('TLS_CIPHERS narrows the list; the service reads it from its configuration', async () => {
    const config = loadInterfaceConfig({ KEYS_DIR: dir, KEY_PASSPHRASE: 'x', PARTNERS_FILE: 'p', EMR_URL: 'http://127.0.0.1:9/x', HMAC_KEY: 'k'.repeat(48), AUDIT_FILE: join(dir, 'a'), TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, TLS_CIPHERS: 'ECDHE-ECDSA-CHACHA20-POLY1305' });
    expect(tlsOf(config)?.ciphers).toBe('ECDHE-ECDSA-CHACHA20-POLY1305');
    const port = await serve(tlsOf(config)!.ciphers);
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'])).toBeNull();
    expect(await handshake(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'])).toBe('ECDHE-ECDSA-CHACHA20-POLY1305');
  });

  it('refuses at start a cipher list that matches nothing, with CR_HTTP_TLS_INVALID', () => {
    expect(() => createHttpServer({ logger: captureLogger('tls').logger, bodyLimit: 1024, tls: { ...files, ciphers: 'NOT-A-CIPHER' } })).toThrow(
      expect.objectContaining({ code: 'CR_HTTP_TLS_INVALID', message: expect.stringContaining('TLS cipher list') }),
    );
  });
});
