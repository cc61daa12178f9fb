// Hostile large objects, in both directions (submissions to the app, chart updates to the
// interface): whatever is done to an object in S3, or to where a pointer points, the receiver
// quarantines the message with the reason, and neither holds the record nor delivers it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditError } from '../../services/core/audit/errors.ts';
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
import type { CapturedLogger } from '../helpers/logs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';
import { readKey } from 'openpgp';

const MiB = 1024 * 1024;
const hasGpg = spawnSync('gpg', ['--version']).status === 0;

type Service = 'interface' | 'app';

/** One direction of large documents: who seals, who receives, and where a record would show. */
interface Direction {
  name: string;
  queue: 'interface-to-app' | 'app-to-interface';
  sender: Service;
  receiver: Service;
  kind: string;
  /** True when the receiver applied the record (inbox, or EMR delivery). */
  applied(id: string): boolean;
  /** The receiver's captured log. */
  logs(): CapturedLogger;
}

let sqs: TestSqs;
let bucket: Awaited<ReturnType<typeof testBucket>>;
let stack: TestStack;
const keys = {} as Record<Service, ServiceKeys>;
const outbound = {} as Record<Service, Outbound>;

const DIRECTIONS: Direction[] = [
  {
    name: 'submissions (interface → app)',
    queue: 'interface-to-app',
    sender: 'interface',
    receiver: 'app',
    kind: 'care.submission',
    applied: (id) => stack.app.inbox.get(id) !== undefined,
    logs: () => stack.logs.app,
  },
  {
    name: 'chart updates (app → interface)',
    queue: 'app-to-interface',
    sender: 'app',
    receiver: 'interface',
    kind: 'chart.update',
    applied: (id) => stack.sink.deliveries.has(id),
    logs: () => stack.logs.iface,
  },
];

beforeAll(async () => {
  sqs = await startTestSqs();
  bucket = await testBucket(sqs);
  stack = await startStack({ sqs, ifaceEnv: bucket.env, appEnv: bucket.env });
  for (const d of DIRECTIONS) {
    const own = stack.keys[d.sender];
    keys[d.sender] = await loadServiceKeys({ dir: own.dir, passphrase: own.passphrase });
    const producer = createProducer({ client: sqs.client, queue: stack.queues[d.queue] });
    const crypto = localCrypto(keys[d.sender], { self: d.sender, maxSkewMs: 60_000, maxAgeMs: 3_600_000 });
    outbound[d.sender] = createOutbound({ crypto, producer, from: d.sender, to: d.receiver, queue: d.queue });
  }
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  bucket?.stop();
  await sqs?.stop();
});

/** The sending direction's large path, writing to the test bucket through `relay` (its sends; these tests make no copies). */
function largeOutbound(d: Direction, relay: Pick<Outbound, 'send'>, sealKeys: ServiceKeys = keys[d.sender]) {
  const store = createObjectStore({ client: bucket.client, bucket: bucket.bucket });
  const outbound: Outbound = { send: (payload, beforeSend, afterSend) => relay.send(payload, beforeSend, afterSend), recordCopy: () => Promise.reject(new Error('no copies here')) };
  return createLargeOutbound({ outbound, store, keys: sealKeys, queue: d.queue, queuePrefix: sqs.prefix, maxBytes: 100 * MiB });
}

/** Seals a document into S3 as the sender does; `meddle` runs between the upload and the send of the pointer. */
async function relayLarge(d: Direction, bytes: number, meddle: (key: string, payload: OutboundPayload) => Promise<OutboundPayload | void>, sealKeys?: ServiceKeys): Promise<string> {
  const intercepting: Pick<Outbound, 'send'> = {
    send: async (payload) => outbound[d.sender].send((await meddle(objectKey(sqs.prefix, d.queue, payload.id!), payload)) ?? payload),
  };
  const large = largeOutbound(d, intercepting, sealKeys);
  const { id } = await large.send({ kind: d.kind, contentType: 'application/xml', body: largeDocument(bytes, Math.floor(Math.random() * 1e6)).stream, actor: 'test' });
  return id;
}

/** Seals a document into S3 without relaying it; resolves with its key (a donor for swaps, or for gpg). */
async function storeOnly(d: Direction, bytes: number, seed = 9): Promise<{ key: string; sha256: Promise<string> }> {
  let key = '';
  const large = largeOutbound(d, { send: async (p) => ((key = objectKey(sqs.prefix, d.queue, p.id!)), p.id!) });
  const doc = largeDocument(bytes, seed);
  await large.send({ kind: d.kind, contentType: 'application/xml', body: doc.stream, actor: 'test' });
  return { key, sha256: doc.sha256 };
}

async function objectBytes(key: string): Promise<Buffer> {
  const out = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function putObject(key: string, body: Buffer): Promise<void> {
  await bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: key, Body: body }));
}

async function quarantinedMessage(d: Direction, id: string, timeoutMs: number) {
  return waitFor(
    async () => {
      const r = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues[d.queue].quarantineUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
      return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id);
    },
    { timeoutMs, what: `quarantined ${id}` },
  );
}

async function quarantined(d: Direction, id: string, timeoutMs = 60_000) {
  const got = await quarantinedMessage(d, id, timeoutMs);
  expect(d.applied(id)).toBe(false);
  return got.MessageAttributes?.['cr-reason']?.StringValue;
}

describe('the sender removes an object only when its pointer was not sent', () => {
  const d = DIRECTIONS[0]!;
  it('SQS took the pointer, then its audit line failed: the send fails, the object stays, and the record arrives', async () => {
    let key = '';
    let id = '';
    const large = largeOutbound(d, {
      send: async (payload) => {
        key = objectKey(sqs.prefix, d.queue, payload.id!);
        id = await outbound[d.sender].send(payload);
        throw new AuditError('CR_AUDIT_WRITE_FAILED', 'audit trail: write failed (ENOSPC)');
      },
    });
    const doc = largeDocument(2 * MiB, 11);
    await expect(large.send({ kind: d.kind, contentType: 'application/xml', body: doc.stream, actor: 'test' })).rejects.toThrow('ENOSPC');
    await waitFor(() => d.applied(id), { timeoutMs: 60_000, what: 'the record held by the receiver' });
    // Still there once the record is held: the sealed document, larger than the 2 MiB it carries.
    expect((await objectBytes(key)).length).toBeGreaterThan(2 * MiB);
  }, 120_000);

  it('the pointer was not sent: the object is removed', async () => {
    let key = '';
    const large = largeOutbound(d, {
      send: async (payload) => {
        key = objectKey(sqs.prefix, d.queue, payload.id!);
        throw new Error('SQS unavailable');
      },
    });
    await expect(large.send({ kind: d.kind, contentType: 'application/xml', body: largeDocument(2 * MiB, 12).stream, actor: 'test' })).rejects.toThrow('SQS unavailable');
    expect(key).not.toBe('');
    await expect(objectBytes(key)).rejects.toThrow();
  }, 120_000);
});

describe.each(DIRECTIONS)('hostile large objects are quarantined with their reason: $name', (d) => {
  it('a tampered object (one bit flipped in the ciphertext)', async () => {
    const id = await relayLarge(d, 2 * MiB, async (key) => {
      const bytes = await objectBytes(key);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await putObject(key, bytes);
    });
    expect(await quarantined(d, id)).toMatch(/^CR_OBJECT_(UNDECRYPTABLE|DIGEST_MISMATCH)$/);
  }, 120_000);

  it('a truncated object', async () => {
    const id = await relayLarge(d, 2 * MiB, async (key) => {
      const bytes = await objectBytes(key);
      await putObject(key, bytes.subarray(0, bytes.length - 4096));
    });
    expect(await quarantined(d, id)).toMatch(/^CR_OBJECT_(UNDECRYPTABLE|SIZE_MISMATCH)$/);
  }, 120_000);

  it('a swapped object: another envelope\'s object copied under this key', async () => {
    const donor = await storeOnly(d, 2 * MiB);
    const id = await relayLarge(d, 2 * MiB, async (key) => {
      await bucket.client.send(new CopyObjectCommand({ Bucket: bucket.bucket, Key: key, CopySource: `${bucket.bucket}/${donor.key}` }));
    });
    expect(await quarantined(d, id)).toBe('CR_OBJECT_DIGEST_MISMATCH');
  }, 120_000);

  it('a swapped object key: the pointer names another envelope\'s object', async () => {
    const donor = await storeOnly(d, 2 * MiB);
    const id = await relayLarge(d, 2 * MiB, async (_key, payload) => {
      const pointer = JSON.parse(payload.body.toString('utf8'));
      return { ...payload, body: Buffer.from(JSON.stringify({ ...pointer, key: donor.key })) };
    });
    expect(await quarantined(d, id)).toBe('CR_OBJECT_POINTER_INVALID');
  }, 120_000);

  it('a deleted object: retried, then quarantined as missing', async () => {
    const id = await relayLarge(d, 2 * MiB, async (key) => {
      await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: key }));
    });
    expect(await quarantined(d, id, 90_000)).toBe('CR_OBJECT_MISSING');
    // Retried before it counted as bad: one "retry later" per receive but the last.
    const retries = d.logs().entries().filter((e) => e.envelopeId === id && e.reason === 'CR_OBJECT_MISSING' && e.msg === 'retry later');
    expect(retries.length).toBe(2);
  }, 120_000);

  it('an object sealed for someone else (a key the receiver does not hold)', async () => {
    const stranger = await generateServiceKey({ service: d.receiver, passphrase: 'stranger-passphrase' });
    const strangerPublic = await readKey({ armoredKey: stranger.publicKey });
    const misaddressed: ServiceKeys = { ...keys[d.sender], peers: peerKeyring([{ name: d.receiver, key: strangerPublic }]) };
    const id = await relayLarge(d, 2 * MiB, async () => undefined, misaddressed);
    expect(await quarantined(d, id)).toBe('CR_OBJECT_UNDECRYPTABLE');
  }, 120_000);

  it('planted PHI in the hostile objects reached no log or audit line', async () => {
    const audits = (await readFile(stack.env.iface.AUDIT_FILE!, 'utf8')) + (await readFile(stack.env.app.AUDIT_FILE!, 'utf8'));
    const logs = [...stack.logs.iface.lines, ...stack.logs.app.lines].join('\n');
    expect(logs).toContain('CR_OBJECT_');
    expect(logs).not.toContain('Quackenbush');
    expect(audits).not.toContain('Quackenbush');
  });
});

describe.skipIf(!hasGpg).each(DIRECTIONS)('a stored object is an OpenPGP message gpg reads: $name', (d) => {
  it('gpg --decrypt (the command in docs/deploy.md and docs/wire-format.md) gives back the document, signature good', async () => {
    const work = await mkdtemp(join(tmpdir(), 'crl-'));
    const home = join(work, 'g');
    await mkdir(home, { mode: 0o700 });
    try {
      const receiver = stack.keys[d.receiver];
      await writeFile(join(work, 'pass'), receiver.passphrase, { mode: 0o600 });
      const stored = await storeOnly(d, 3 * MiB, 42);
      await writeFile(join(work, 'object.pgp'), await objectBytes(stored.key));
      const gpg = (args: string[]) =>
        spawnSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--trust-model', 'always', '--pinentry-mode', 'loopback', '--passphrase-file', join(work, 'pass'), ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(gpg(['--import', join(receiver.dir, 'private.asc')]).status).toBe(0);
      expect(gpg(['--import', join(receiver.dir, 'peers', `${d.sender}.asc`)]).status).toBe(0);
      const out = gpg(['--status-fd', '1', '--decrypt', '--output', join(work, 'document'), join(work, 'object.pgp')]);
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout).toContain('[GNUPG:] GOODSIG');
      const plain = await readFile(join(work, 'document'));
      expect(createHash('sha256').update(plain).digest('hex')).toBe(await stored.sha256);
      expect(plain.includes(LARGE_DOC_PHI)).toBe(true);
      await createObjectStore({ client: bucket.client, bucket: bucket.bucket }).remove(stored.key);
    } finally {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
      await rm(work, { recursive: true, force: true });
    }
  }, 120_000);
});
