import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';

/** A throwaway self-signed P-256 certificate for localhost and 127.0.0.1, made with the openssl CLI. */
export async function makeSelfSignedCert(dir: string, name = 'tls'): Promise<{ certFile: string; keyFile: string; cert: Buffer }> {
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { certFile, keyFile, cert: await readFile(certFile) };
}

/**
 * Offers at most TLS 1.1 to a server on loopback (security level 0 lets OpenSSL 3 really
 * offer it) and resolves with the handshake error; rejects if the handshake succeeds.
 */
export function offerTls11(port: number): Promise<Error & { code?: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false });
    socket.on('secureConnect', () => {
      socket.destroy();
      reject(new Error(`TLS 1.1 handshake succeeded (${socket.getProtocol()})`));
    });
    socket.on('error', resolve);
  });
}

/** What {@link httpsCall} got back, with the negotiated TLS version. */
export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  protocol: string | null;
  body: string;
}

/** Options of {@link httpsCall}. */
export interface HttpsCallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Highest TLS version the client offers. */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** One HTTPS request to a server on loopback that presents `cert` for localhost. */
export function httpsCall(port: number, cert: Buffer, path: string, options: HttpsCallOptions = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, servername: 'localhost', ca: cert, agent: false, ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}) },
      (res) => {
        const protocol = (res.socket as TLSSocket).getProtocol();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, protocol, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
