import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
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

/** A certificate made by the helpers below: its PEM files and contents, and its SHA-256 fingerprint as openssl prints it. */
export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** Upper-case hex with colons (`AB:CD:…`). */
  sha256: string;
}

async function certFiles(certFile: string, keyFile: string): Promise<TestCert> {
  const printed = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
  const sha256 = /=([0-9A-F:]{95})/.exec(printed)?.[1];
  if (!sha256) throw new Error('openssl printed no SHA-256 fingerprint');
  return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile), sha256 };
}

/** A throwaway P-256 certificate authority (self-signed, CA:TRUE), made with the openssl CLI. */
export async function makeTestCa(dir: string, name: string): Promise<TestCert> {
  const certFile = join(dir, `${name}-ca-cert.pem`);
  const keyFile = join(dir, `${name}-ca-key.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${name} test CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return certFiles(certFile, keyFile);
}

/** A P-256 TLS client certificate for `name`, signed by `ca` (made with the openssl CLI). */
export async function makeClientCert(dir: string, name: string, ca: TestCert): Promise<TestCert> {
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csrFile], { stdio: 'ignore' });
  await writeFile(extFile, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  execFileSync('openssl', ['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '1', '-extfile', extFile, '-out', certFile], { stdio: 'ignore' });
  return certFiles(certFile, keyFile);
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
