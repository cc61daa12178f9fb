// Partner callbacks never reach this machine, its network or the cloud metadata service unless the
// operator says the partner is on a private network (PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS): an
// address written in the URL is refused when the partners file is loaded, and a name is checked on
// each connection against the addresses it resolves to (a partner's DNS pointing inwards, or rebound).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../../services/core/http/auth.ts';
import { createCallbackPoster } from '../../../services/interface/callbacks/post.ts';
import { isInternalAddress } from '../../../services/interface/callbacks/target.ts';
import { createCallbackTargets } from '../../../services/interface/callbacks/targets.ts';
import { makeSelfSignedCert } from '../../helpers/tls.ts';
import { newWhsec, startWebhookReceiver, type WebhookReceiver } from '../../helpers/webhookReceiver.ts';

let dir: string;
let receiver: WebhookReceiver;
let ca: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-cb-internal-'));
  const tls = await makeSelfSignedCert(dir, 'receiver');
  ca = tls.cert;
  receiver = await startWebhookReceiver({ cert: tls.cert, key: await readFile(tls.keyFile) });
  await writeFile(join(dir, 'acme.whsec'), `${newWhsec()}\n`);
});
afterAll(async () => {
  await receiver?.stop();
  await rm(dir, { recursive: true, force: true });
});

const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' };
const port = (): string => new URL(receiver.url).port;

describe('internal addresses', () => {
  it('classifies loopback, private, CGNAT, link-local (metadata), unique-local, unspecified, multicast and mapped forms as internal; public ones not', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1']) {
      expect(isInternalAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8']) expect(isInternalAddress(a), a).toBe(false);
  });

  it('the partners file: a callback URL written as an internal address (or localhost) stops the start, naming PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS; with it set, it loads', async () => {
    for (const url of ['https://10.0.0.5/hook', 'https://169.254.169.254/latest/meta-data', 'https://[::1]:8443/hook', 'https://localhost/hook', 'https://[::ffff:7f00:1]/hook', 'https://2130706433/hook']) {
      await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'acme-health', sha256: hashToken('acme-token-0123456789'), callback: { url, secretFile: 'acme.whsec' } }] }));
      expect(() => createCallbackTargets({ partnersFile: join(dir, 'partners.json'), allowInsecure: false }), url).toThrow(/PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS/);
      expect(createCallbackTargets({ partnersFile: join(dir, 'partners.json'), allowInsecure: false, allowPrivate: true }).size, url).toBe(1);
    }
  });

  it('a connection: a name that resolves only to internal addresses, or an internal address, is refused before any byte is sent (CR_CALLBACK_ADDRESS_REFUSED); allowed, it is posted', async () => {
    const post = createCallbackPoster({ timeoutMs: 5000, ca });
    const signal = new AbortController().signal;
    for (const url of [`https://localhost:${port()}/hook`, `https://127.0.0.1:${port()}/hook`, `https://[::ffff:127.0.0.1]:${port()}/hook`]) {
      expect(await post(new URL(url), headers, '{}', signal), url).toEqual({ kind: 'failed', reason: 'CR_CALLBACK_ADDRESS_REFUSED' });
    }
    expect(receiver.received).toHaveLength(0);
    const allowed = createCallbackPoster({ timeoutMs: 5000, ca, allowPrivate: true });
    expect(await allowed(new URL(`https://localhost:${port()}/hook`), headers, '{}', signal)).toEqual({ kind: 'answered', status: 200 });
    expect(receiver.received).toHaveLength(1);
  });
});
