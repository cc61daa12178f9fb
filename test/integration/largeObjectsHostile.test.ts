// Hostile large objects: whatever is done to an object in S3, or to where a pointer points,
// the app quarantines the message with the reason, and never holds the record.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateServiceKey } from '../../services/core/keys/generate.ts';
import { loadServiceKeys, type ServiceKeys } from '../../services/core/keys/load.ts';
import { peerKeyring } from '../../services/core/keys/keyring.ts';
import { createLargeOutbound } from '../../services/core/objects/largeOutbound.ts';
import { createObjectStore } from '../../services/core/objects/objectStore.ts';
import { objectKey } from '../../services/core/objects/pointer.ts';
import { localCrypto } from '../../services/core/relay/crypto.ts';
import { createOutbound, type Outbound, type OutboundPayload } from '../../services/core/relay/outbound.ts';
import { createProducer } from '../../services/core/transport/producer.ts';
import { LARGE_DOC_PHI, largeDocument, testBucket } from '../helpers/largeDocs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';
import { readKey } from 'openpgp';

const MiB = 1024 * 1024;
const hasGpg = spawnSync('gpg', ['--version']).status === 0;

let sqs: TestSqs;
let bucket: Awaited<ReturnType<typeof testBucket>>;
let stack: TestStack;
let ifaceKeys: ServiceKeys;
let outbound: Outbound;

beforeAll(async () => {
  sqs = await startTestSqs();
  bucket = await testBucket(sqs);
  stack = await startStack({ sqs, ifaceEnv: bucket.env, appEnv: bucket.env });
  ifaceKeys = await loadServiceKeys({ dir: stack.keys.interface.dir, passphrase: stack.keys.interface.passphrase });
  const producer = createProducer({ client: sqs.client, queue: stack.queues['interface-to-app'] });
  outbound = createOutbound({ crypto: localCrypto(ifaceKeys, { self: 'interface', maxSkewMs: 60_000, maxAgeMs: 3_600_000 }), producer, from: 'interface', to: 'app', queue: 'interface-to-app' });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  bucket?.stop();
  await sqs?.stop();
});

/** Seals a document into S3 as the interface does; `meddle` runs between the upload and the send of the pointer. */
async function relayLarge(bytes: number, meddle: (key: string, payload: OutboundPayload) => Promise<OutboundPayload | void>, keys: ServiceKeys = ifaceKeys): Promise<string> {
  const store = createObjectStore({ client: bucket.client, bucket: bucket.bucket });
  const intercepting: Outbound = {
    send: async (payload) => outbound.send((await meddle(objectKey(sqs.prefix, 'interface-to-app', payload.id!), payload)) ?? payload),
  };
  const large = createLargeOutbound({ outbound: intercepting, store, keys, queue: 'interface-to-app', queuePrefix: sqs.prefix, maxBytes: 100 * MiB });
  const { id } = await large.send({ kind: 'care.submission', partner: 'acme-health', contentType: 'application/xml', body: largeDocument(bytes, Math.floor(Math.random() * 1e6)).stream, actor: 'test' });
  return id;
}

/** Seals a document into S3 without relaying it; resolves with its key (a donor for swaps). */
async function storeOnly(bytes: number): Promise<string> {
  let key = '';
  const large = createLargeOutbound({
    outbound: { send: async (p) => ((key = objectKey(sqs.prefix, 'interface-to-app', p.id!)), p.id!) },
    store: createObjectStore({ client: bucket.client, bucket: bucket.bucket }),
    keys: ifaceKeys,
    queue: 'interface-to-app',
    queuePrefix: sqs.prefix,
    maxBytes: 100 * MiB,
  });
  await large.send({ kind: 'care.submission', contentType: 'application/xml', body: largeDocument(bytes, 9).stream, actor: 'test' });
  return key;
}

async function objectBytes(key: string): Promise<Buffer> {
  const out = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function putObject(key: string, body: Buffer): Promise<void> {
  await bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: key, Body: body }));
}

async function quarantined(id: string, timeoutMs = 60_000) {
  const got = await waitFor(
    async () => {
      const r = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['interface-to-app'].quarantineUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
      return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id);
    },
    { timeoutMs, what: `quarantined ${id}` },
  );
  expect(stack.app.inbox.get(id)).toBeUndefined();
  return got.MessageAttributes?.['cr-reason']?.StringValue;
}

describe('hostile large objects are quarantined with their reason', () => {
  it('a tampered object (one bit flipped in the ciphertext)', async () => {
    const id = await relayLarge(2 * MiB, async (key) => {
      const bytes = await objectBytes(key);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await putObject(key, bytes);
    });
    expect(await quarantined(id)).toMatch(/^CR_OBJECT_(UNDECRYPTABLE|DIGEST_MISMATCH)$/);
  }, 120_000);

  it('a truncated object', async () => {
    const id = await relayLarge(2 * MiB, async (key) => {
      const bytes = await objectBytes(key);
      await putObject(key, bytes.subarray(0, bytes.length - 4096));
    });
    expect(await quarantined(id)).toMatch(/^CR_OBJECT_(UNDECRYPTABLE|SIZE_MISMATCH)$/);
  }, 120_000);

  it('a swapped object: another envelope\'s object copied under this key', async () => {
    const donorKey = await storeOnly(2 * MiB);
    const id = await relayLarge(2 * MiB, async (key) => {
      await bucket.client.send(new CopyObjectCommand({ Bucket: bucket.bucket, Key: key, CopySource: `${bucket.bucket}/${donorKey}` }));
    });
    expect(await quarantined(id)).toBe('CR_OBJECT_DIGEST_MISMATCH');
  }, 120_000);

  it('a swapped object key: the pointer names another envelope\'s object', async () => {
    const donorKey = await storeOnly(2 * MiB);
    const id = await relayLarge(2 * MiB, async (_key, payload) => {
      const pointer = JSON.parse(payload.body.toString('utf8'));
      return { ...payload, body: Buffer.from(JSON.stringify({ ...pointer, key: donorKey })) };
    });
    expect(await quarantined(id)).toBe('CR_OBJECT_POINTER_INVALID');
  }, 120_000);

  it('a deleted object: retried, then quarantined as missing', async () => {
    const id = await relayLarge(2 * MiB, async (key) => {
      await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: key }));
    });
    const got = await waitFor(
      async () => {
        const r = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['interface-to-app'].quarantineUrl, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['ApproximateReceiveCount'], WaitTimeSeconds: 1 }));
        return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id);
      },
      { timeoutMs: 90_000, what: 'the missing object quarantined' },
    );
    expect(got.MessageAttributes?.['cr-reason']?.StringValue).toBe('CR_OBJECT_MISSING');
    // Retried before it counted as bad: one "retry later" per receive but the last.
    const retries = stack.logs.app.entries().filter((e) => e.envelopeId === id && e.reason === 'CR_OBJECT_MISSING' && e.msg === 'retry later');
    expect(retries.length).toBe(2);
  }, 120_000);

  it('an object sealed for someone else (a key the app does not hold)', async () => {
    const stranger = await generateServiceKey({ service: 'app', passphrase: 'stranger-passphrase' });
    const strangerPublic = await readKey({ armoredKey: stranger.publicKey });
    const misaddressed: ServiceKeys = { ...ifaceKeys, peers: peerKeyring([{ name: 'app', key: strangerPublic }]) };
    const id = await relayLarge(2 * MiB, async () => undefined, misaddressed);
    expect(await quarantined(id)).toBe('CR_OBJECT_UNDECRYPTABLE');
  }, 120_000);
});

describe.skipIf(!hasGpg)('a stored object is an OpenPGP message gpg reads', () => {
  it('gpg --decrypt (the command in docs/deploy.md) gives back the document, signature good', async () => {
    const work = await mkdtemp(join(tmpdir(), 'crl-'));
    const home = join(work, 'g');
    await mkdir(home, { mode: 0o700 });
    try {
      await writeFile(join(work, 'pass'), stack.keys.app.passphrase, { mode: 0o600 });
      const doc = largeDocument(3 * MiB, 42);
      const store = createObjectStore({ client: bucket.client, bucket: bucket.bucket });
      let key = '';
      const large = createLargeOutbound({
        outbound: { send: async (p) => ((key = objectKey(sqs.prefix, 'interface-to-app', p.id!)), p.id!) },
        store,
        keys: ifaceKeys,
        queue: 'interface-to-app',
        queuePrefix: sqs.prefix,
        maxBytes: 100 * MiB,
      });
      await large.send({ kind: 'care.submission', contentType: 'application/xml', body: doc.stream, actor: 'test' });
      await writeFile(join(work, 'object.pgp'), await objectBytes(key));
      const gpg = (args: string[]) =>
        spawnSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--trust-model', 'always', '--pinentry-mode', 'loopback', '--passphrase-file', join(work, 'pass'), ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(gpg(['--import', join(stack.keys.app.dir, 'private.asc')]).status).toBe(0);
      expect(gpg(['--import', join(stack.keys.app.dir, 'peers', 'interface.asc')]).status).toBe(0);
      const out = gpg(['--status-fd', '1', '--decrypt', '--output', join(work, 'document'), join(work, 'object.pgp')]);
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout).toContain('[GNUPG:] GOODSIG');
      const plain = await readFile(join(work, 'document'));
      expect(createHash('sha256').update(plain).digest('hex')).toBe(await doc.sha256);
      expect(plain.includes(LARGE_DOC_PHI)).toBe(true);
      await store.remove(key);
    } finally {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
      await rm(work, { recursive: true, force: true });
    }
  }, 120_000);
});
