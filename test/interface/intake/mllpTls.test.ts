// Partner intake over MLLP on TLS, end to end through the real relay (SQS emulator, app
// inbox): the partner is the client certificate whose SHA-256 fingerprint the partners file
// names; with MLLP_INTAKE_CLIENT_CA_FILE that CA must have signed it too (refused at the
// handshake), without it the fingerprint alone decides. The partner side is node:tls with
// MLLP framing written by hand (<VT>message<FS><CR>), no relay code.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../../services/core/http/auth.ts';
import { startStack, type TestStack } from '../../helpers/stack.ts';
import { makeClientCert, makeSelfSignedCert, makeTestCa, offerTls11, type TestCert } from '../../helpers/tls.ts';
import { waitFor } from '../../helpers/wait.ts';

let stack: TestStack;
let dir: string;
let server: { certFile: string; keyFile: string; cert: Buffer };
let caFile: string;
let partnersFile: string;
let partnerCert: TestCert;
let strangerCert: TestCert;
let foreignCert: TestCert;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mllp-tls-'));
  server = await makeSelfSignedCert(dir, 'server');
  const ca = await makeTestCa(dir, 'partners');
  caFile = ca.certFile;
  partnerCert = await makeClientCert(dir, 'north-lab', ca);
  strangerCert = await makeClientCert(dir, 'stranger', ca);
  // Another CA's certificate whose fingerprint IS configured: the CA check must still refuse it.
  foreignCert = await makeClientCert(dir, 'rogue', await makeTestCa(dir, 'other'));
  partnersFile = join(dir, 'partners.json');
  // The partners file exactly as docs/configuration.md shows it (fingerprint as openssl prints it).
  await writeFile(
    partnersFile,
    JSON.stringify({
      tokens: [
        { name: 'north-lab', sha256: hashToken('unused-north'), contentTypes: ['application/hl7-v2'], rateLimitPerMinute: 600, mllp: { clientCertSha256: partnerCert.sha256 } },
        { name: 'rogue-lab', sha256: hashToken('unused-rogue'), contentTypes: ['application/hl7-v2'], mllp: { clientCertSha256: foreignCert.sha256.replaceAll(':', '').toLowerCase() } },
      ],
    }),
  );
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The relay with MLLP intake on TLS (the client CA when `withCa`); stopped after the suite. */
function tlsStack(withCa: boolean): void {
  beforeAll(async () => {
    stack = await startStack({
      ifaceEnv: {
        PARTNERS_FILE: partnersFile,
        TLS_CERT_FILE: server.certFile,
        TLS_KEY_FILE: server.keyFile,
        MLLP_INTAKE_PORT: '0',
        ...(withCa ? { MLLP_INTAKE_CLIENT_CA_FILE: caFile } : {}),
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });
}

const port = (): number => stack.iface.mllp!.listener.port;

function oru(controlId: string, extra = ''): string {
  return `MSH|^~\\&|LIS|NORTH|CARE|RELAY|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1${extra}\rPID|1||77^^^NORTH^MR||Testperson^Alvina\rOBX|1|TX|note||tls\r`;
}

/** What a TLS partner got: the ACK (unframed) or nothing, and the error that ended the connection. */
interface Exchange {
  ack: string | undefined;
  error: (Error & { code?: string }) | undefined;
}

/** One framed message over TLS (client certificate optional); resolves when the ACK arrives or the connection ends. */
function sendOverTls(message: string, client: Pick<ConnectionOptions, 'cert' | 'key' | 'maxVersion' | 'ciphers'> = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: port(), servername: 'localhost', ca: server.cert, ...client });
    let got = Buffer.alloc(0);
    let error: Exchange['error'];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      const end = got.indexOf('\x1c\r');
      resolve({ ack: got[0] === 0x0b && end > 0 ? got.subarray(1, end).toString('utf8') : undefined, error });
      socket.destroy();
    };
    socket.on('secureConnect', () => socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])])));
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.includes('\x1c\r')) finish();
    });
    socket.on('error', (err) => {
      error = err;
      finish();
    });
    socket.on('close', finish);
  });
}

/** MSA-1..3 and ERR-5.1 of an ACK, read by splitting on the separators. */
function fields(ack: string): { code: string; controlId: string; envelopeId: string; err: string } {
  const segments = ack.split('\r').map((s) => s.split('|'));
  const msa = segments.find((s) => s[0] === 'MSA') ?? [];
  const err = segments.find((s) => s[0] === 'ERR');
  return { code: msa[1] ?? '', controlId: msa[2] ?? '', envelopeId: msa[3] ?? '', err: err?.[5]?.split('^')[0] ?? '' };
}

const relayedCount = (): number => stack.logs.iface.entries().filter((e) => e.msg === 'relayed').length;

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

describe('partner intake over MLLP on TLS, client CA required', () => {
  tlsStack(true);

  it('the partner whose client certificate fingerprint is configured gets AA with the envelope id, and the app receives the message', async () => {
    const { ack, error } = await sendOverTls(oru('T-1'), { cert: partnerCert.cert, key: partnerCert.key });
    expect(error).toBeUndefined();
    const msa = fields(ack!);
    expect(msa).toMatchObject({ code: 'AA', controlId: 'T-1', err: '' });
    expect(msa.envelopeId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await inboxHas(msa.envelopeId)).toBe(oru('T-1'));
    expect(stack.logs.iface.entries().find((e) => e.msg === 'MLLP submission accepted' && e.envelopeId === msa.envelopeId)).toMatchObject({ partner: 'north-lab' });
  });

  it('enhanced mode over TLS gets CA', async () => {
    const { ack } = await sendOverTls(oru('T-enh', '|||AL|NE'), { cert: partnerCert.cert, key: partnerCert.key });
    expect(fields(ack!)).toMatchObject({ code: 'CA', controlId: 'T-enh' });
  });

  it('a certificate from the same CA that no partner names gets AR CR_MLLP_PARTNER_UNKNOWN and nothing is sent', async () => {
    const before = relayedCount();
    const { ack } = await sendOverTls(oru('X-1'), { cert: strangerCert.cert, key: strangerCert.key });
    expect(fields(ack!)).toEqual({ code: 'AR', controlId: 'X-1', envelopeId: '', err: 'CR_MLLP_PARTNER_UNKNOWN' });
    expect(relayedCount()).toBe(before);
    expect(stack.logs.iface.entries().some((e) => e.msg === 'MLLP submission accepted' && JSON.stringify(e).includes('X-1'))).toBe(false);
  });

  it('a client without a certificate is refused at the TLS handshake and nothing is sent', async () => {
    const before = relayedCount();
    const { ack, error } = await sendOverTls(oru('N-1'));
    expect(ack).toBeUndefined();
    expect(error?.code).toMatch(/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ECONNRESET/);
    expect(relayedCount()).toBe(before);
  });

  it('a certificate from another CA is refused at the handshake even though its fingerprint is configured', async () => {
    const before = relayedCount();
    const { ack } = await sendOverTls(oru('R-1'), { cert: foreignCert.cert, key: foreignCert.key });
    // Node ends the connection without a TLS alert when the CA check fails: no ACK, nothing relayed.
    expect(ack).toBeUndefined();
    expect(relayedCount()).toBe(before);
    const logged = await waitFor(() => stack.logs.iface.entries().find((e) => e.msg === 'MLLP TLS handshake failed' && e.certificate), { what: 'handshake failure logged with the reason' });
    expect(logged.certificate).toMatch(/^UNABLE_TO_GET_ISSUER_CERT|^UNABLE_TO_VERIFY/);
  });

  it('refuses TLS 1.1, and TLS 1.2 with a CBC cipher (the HTTP server’s cipher list), even for the partner', async () => {
    const refused = await offerTls11(port());
    expect(refused.code).toMatch(/UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION|ECONNRESET/);
    const cbc = await sendOverTls(oru('C-1'), { cert: partnerCert.cert, key: partnerCert.key, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' });
    expect(cbc.ack).toBeUndefined();
    expect(cbc.error?.code).toMatch(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER|ECONNRESET/);
    const gcm = await sendOverTls(oru('C-2'), { cert: partnerCert.cert, key: partnerCert.key, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(fields(gcm.ack!)).toMatchObject({ code: 'AA', controlId: 'C-2' });
  });
});

describe('partner intake over MLLP on TLS, certificates pinned by fingerprint only (no client CA)', () => {
  tlsStack(false);

  it('the pinned certificate gets AA whatever CA signed it; no certificate, or an unknown one, gets AR and nothing is sent', async () => {
    const pinned = await sendOverTls(oru('P-1'), { cert: foreignCert.cert, key: foreignCert.key });
    expect(fields(pinned.ack!)).toMatchObject({ code: 'AA', controlId: 'P-1' });
    expect(stack.logs.iface.entries().find((e) => e.msg === 'MLLP submission accepted' && e.envelopeId === fields(pinned.ack!).envelopeId)).toMatchObject({ partner: 'rogue-lab' });
    const before = relayedCount();
    const none = await sendOverTls(oru('P-2'));
    expect(fields(none.ack!)).toEqual({ code: 'AR', controlId: 'P-2', envelopeId: '', err: 'CR_MLLP_PARTNER_UNKNOWN' });
    const unknown = await sendOverTls(oru('P-3'), { cert: strangerCert.cert, key: strangerCert.key });
    expect(fields(unknown.ack!)).toEqual({ code: 'AR', controlId: 'P-3', envelopeId: '', err: 'CR_MLLP_PARTNER_UNKNOWN' });
    expect(relayedCount()).toBe(before);
  });
});
