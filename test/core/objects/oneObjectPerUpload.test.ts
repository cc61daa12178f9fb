// One upload never replaces another's object for the same envelope id: the large path writes
// with `If-None-Match: *` (a conflict fails that upload cleanly, aborting only its own parts), a
// retry that took over an Idempotency-Key stores under a key of its own (`<id>.<attempt>.pgp`,
// accepted by the receiver's pointer check), and a send that fails removes only its own object.
import { Readable } from 'node:stream';
import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../../services/core/envelope/envelope.ts';
import type { ServiceKeys } from '../../../services/core/keys/load.ts';
import { createLargeOutbound } from '../../../services/core/objects/largeOutbound.ts';
import { PART_BYTES, createObjectStore, isObjectConflict } from '../../../services/core/objects/objectStore.ts';
import { OBJECT_POINTER_TYPE, objectKey, readPointer } from '../../../services/core/objects/pointer.ts';
import type { Outbound } from '../../../services/core/relay/outbound.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { largeDocument, useTestBucket } from '../../helpers/largeDocs.ts';

const MiB = 1024 * 1024;
const fixture = useTestBucket();
let pair: TestServiceKeyPair;
beforeAll(async () => {
  pair = await makeServiceKeyPair();
}, 60_000);
afterAll(() => pair?.cleanup());

/**
 * A client on the emulator that records each command's input, and answers `refuse` (S3's 412
 * PreconditionFailed, which the emulator does not implement) to the commands named there.
 */
function conditionalClient(refuse: Set<string>) {
  const sent: Array<{ name: string; input: Record<string, unknown> }> = [];
  const { sqs } = fixture;
  const client = new S3Client({ endpoint: sqs.endpoint, region: sqs.region, forcePathStyle: true, credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      sent.push({ name, input: args.input as Record<string, unknown> });
      if (refuse.has(name) && (args.input as { IfNoneMatch?: string }).IfNoneMatch === '*') {
        throw new S3ServiceException({ name: 'PreconditionFailed', $fault: 'client', $metadata: { httpStatusCode: 412 }, message: 'At least one of the pre-conditions you specified did not hold' });
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  return { client, sent };
}

const keysOf = (): ServiceKeys => ({ own: pair.interface.own, peers: pair.interface.peers }) as ServiceKeys;

async function etagOf(client: S3Client, key: string): Promise<string | undefined> {
  const out = await client.send(new GetObjectCommand({ Bucket: fixture.bucket.bucket, Key: key }));
  await out.Body?.transformToByteArray();
  return out.ETag;
}

describe('one object per upload', () => {
  it.each([
    ['one part (PutObject)', MiB, 'PutObjectCommand'],
    ['multipart (CompleteMultipartUpload)', PART_BYTES + MiB, 'CompleteMultipartUploadCommand'],
  ])('%s: the write is conditional (If-None-Match: *); refused, the upload fails cleanly, aborts only its own parts and leaves the stored object as it was', async (_name, bytes, command) => {
    const { client, sent } = conditionalClient(new Set([command]));
    const store = createObjectStore({ client, bucket: fixture.bucket.bucket });
    const key = `cond/${uuidv7()}.pgp`;
    const stored = await store.upload(key, Readable.from([Buffer.from('the first upload')]));
    const err = await store.upload(key, largeDocument(bytes).stream, undefined, { ifAbsent: true }).then(() => undefined, (e: unknown) => e);
    expect(isObjectConflict(err)).toBe(true);
    expect((err as { code?: string; status?: number }).code).toBe('CR_OBJECT_STORE_UNAVAILABLE');
    expect(sent.find((c) => c.name === command && c.input.Key === key && c.input.IfNoneMatch === '*')).toBeDefined();
    if (command === 'CompleteMultipartUploadCommand') {
      const created = sent.filter((c) => c.name === 'CreateMultipartUploadCommand');
      const aborted = sent.filter((c) => c.name === 'AbortMultipartUploadCommand');
      expect(aborted).toHaveLength(1);
      expect(aborted[0]!.input.UploadId).toBe(sent.find((c) => c.name === 'UploadPartCommand')!.input.UploadId);
      expect(created[0]!.input.IfNoneMatch).toBeUndefined();
    }
    expect(await etagOf(client, key)).toBe(stored);
    client.destroy();
  }, 60_000);

  it('a retry that took over an Idempotency-Key stores under a key of its own; its failed send removes that object only', async () => {
    const { client } = conditionalClient(new Set());
    const store = createObjectStore({ client, bucket: fixture.bucket.bucket });
    const queuePrefix = fixture.sqs.prefix;
    const id = uuidv7();
    const relayed: Array<{ body: Buffer }> = [];
    let failNext = false;
    const outbound: Outbound = {
      send: async (payload) => {
        if (failNext) throw new Error('SQS refused the pointer');
        relayed.push({ body: payload.body });
        return payload.id!;
      },
      recordCopy: async () => undefined,
    };
    const large = createLargeOutbound({ outbound, store, keys: keysOf(), queue: 'interface-to-app', queuePrefix, maxBytes: 100 * MiB });
    await large.send({ id, kind: 'care.submission', contentType: 'application/xml', body: largeDocument(MiB, 1).stream, actor: 'acme' });
    const first = objectKey(queuePrefix, 'interface-to-app', id);
    const firstTag = await etagOf(client, first);

    failNext = true;
    await expect(large.send({ id, kind: 'care.submission', contentType: 'application/xml', body: largeDocument(MiB, 1).stream, actor: 'acme', separateObject: true })).rejects.toThrow('SQS refused');
    expect((await fixture.bucket.keys(`${queuePrefix}interface-to-app/${id}`))).toEqual([first]);
    expect(await etagOf(client, first)).toBe(firstTag);

    failNext = false;
    await large.send({ id, kind: 'care.submission', contentType: 'application/xml', body: largeDocument(MiB, 1).stream, actor: 'acme', separateObject: true });
    const keys = await fixture.bucket.keys(`${queuePrefix}interface-to-app/${id}`);
    expect(keys).toHaveLength(2);
    expect(await etagOf(client, first)).toBe(firstTag);
    // Each pointer names its own object, and the receiver accepts both as this envelope's.
    const pointers = relayed.map((r) => JSON.parse(r.body.toString('utf8')) as { key: string });
    expect(pointers.map((p) => p.key).sort()).toEqual([...keys].sort());
    const envelope = (body: Buffer, envelopeId = id): Envelope =>
      ({ id: envelopeId, queue: 'interface-to-app', contentType: OBJECT_POINTER_TYPE, body: body.toString('utf8') }) as Envelope;
    for (const r of relayed) expect(readPointer(envelope(r.body), { bucket: fixture.bucket.bucket, queuePrefix }).key).toMatch(new RegExp(`/${id}(\\.[0-9a-f]{16})?\\.pgp$`));
    // Another envelope's attempt key is still refused.
    expect(() => readPointer(envelope(relayed[1]!.body, uuidv7()), { bucket: fixture.bucket.bucket, queuePrefix })).toThrow(/not this envelope/);
    client.destroy();
  }, 60_000);
});
