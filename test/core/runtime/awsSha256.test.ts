import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AwsSha256, HMAC_KEY_CACHE_SIZE } from '../../../services/core/runtime/awsSha256.ts';
import { createDynamoClient } from '../../../services/core/state/table.ts';
import { createSqsClient } from '../../../services/core/transport/sqsClient.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const data = Buffer.from('AWS4-HMAC-SHA256\n20261201T120000Z\n20261201/us-east-1/sqs/aws4_request\n');

describe('AwsSha256 (the SDK clients\' sha256)', () => {
  it('computes SHA-256, and HMAC-SHA-256 with a key given as text, bytes or an ArrayBuffer', async () => {
    const plain = new AwsSha256();
    plain.update(data);
    expect(hex(await plain.digest())).toBe(createHash('sha256').update(data).digest('hex'));

    const key = randomBytes(32);
    for (const secret of [key, new Uint8Array(key), key.buffer.slice(key.byteOffset, key.byteOffset + key.length), key.toString('latin1')]) {
      const expected = createHmac('sha256', typeof secret === 'string' ? Buffer.from(secret, 'utf8') : key).update(data).digest('hex');
      const mac = new AwsSha256(secret);
      mac.update(data);
      expect(hex(await mac.digest())).toBe(expected);
    }
  });

  it('keeps the SDK class\'s edge cases: an empty text key is a plain hash, empty bytes an empty HMAC key', async () => {
    const emptyText = new AwsSha256('');
    emptyText.update(data);
    expect(hex(await emptyText.digest())).toBe(createHash('sha256').update(data).digest('hex'));
    const emptyBytes = new AwsSha256(new Uint8Array(0));
    emptyBytes.update(data);
    expect(hex(await emptyBytes.digest())).toBe(createHmac('sha256', Buffer.alloc(0)).update(data).digest('hex'));
  });

  it('a plain hash goes on after a digest; an HMAC refuses more input until reset', async () => {
    const plain = new AwsSha256();
    plain.update(data.subarray(0, 10));
    await plain.digest();
    plain.update(data.subarray(10));
    expect(hex(await plain.digest())).toBe(createHash('sha256').update(data).digest('hex'));

    const mac = new AwsSha256('k');
    mac.update(data);
    await mac.digest();
    expect(() => mac.update(data)).toThrow(/already finished/);
    mac.reset();
    mac.update(data);
    expect(hex(await mac.digest())).toBe(createHmac('sha256', 'k').update(data).digest('hex'));
  });

  it('gives the right HMAC for every key when more keys pass than it keeps', async () => {
    const keys = Array.from({ length: HMAC_KEY_CACHE_SIZE * 3 + 1 }, () => randomBytes(32));
    for (const round of [0, 1]) {
      for (const [i, key] of keys.entries()) {
        // Interleaved with a key used again and again, as the day's signing key is.
        for (const secret of [key, keys[0]!]) {
          const mac = new AwsSha256(secret);
          mac.update(data);
          expect(hex(await mac.digest()), `round ${round} key ${i}`).toBe(createHmac('sha256', secret).update(data).digest('hex'));
        }
      }
    }
  });
});

/** A request handler that records each request's headers and answers `body` at once. */
function recording(body: string): { handler: never; headers: Record<string, string>[] } {
  const headers: Record<string, string>[] = [];
  const handler = {
    handle: async (request: { headers: Record<string, string> }) => {
      headers.push({ ...request.headers });
      return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Readable.from([Buffer.from(body)]) } };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  };
  return { handler: handler as never, headers };
}

/** The SDK signs a random invocation id per request: fixed here, so that two clients' signatures can be compared. */
function fixedInvocationId<C extends { middlewareStack: { addRelativeTo(m: never, o: never): void } }>(client: C): C {
  const middleware = (next: (args: { request: { headers: Record<string, string> } }) => Promise<unknown>) => async (args: { request: { headers: Record<string, string> } }) => {
    args.request.headers['amz-sdk-invocation-id'] = '00000000-0000-4000-8000-000000000000';
    return next(args);
  };
  client.middlewareStack.addRelativeTo(middleware as never, { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'fixedInvocationId' } as never);
  return client;
}

describe('request signing with AwsSha256', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('signs SQS and DynamoDB requests exactly as the SDK\'s own sha256 does (same Authorization header), across days and credentials', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const config = { region: 'eu-west-2', endpoint: 'http://127.0.0.1:1', maxAttempts: 1 };
    for (const [day, credentials] of [
      ['2026-12-01T12:00:00Z', { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret/not+a+real+key' }],
      ['2026-12-02T00:00:01Z', { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret/not+a+real+key' }],
      ['2026-12-02T00:00:02Z', { accessKeyId: 'ASIAROTATED', secretAccessKey: 'rotated/secret', sessionToken: 'session-token' }],
    ] as const) {
      vi.setSystemTime(new Date(day));
      const sqs = [recording('{"Successful":[],"Failed":[]}'), recording('{"Successful":[],"Failed":[]}')];
      const sqsClients = [fixedInvocationId(new SQSClient({ ...config, credentials, requestHandler: sqs[0]!.handler, md5: false })), fixedInvocationId(new SQSClient({ ...config, credentials, requestHandler: sqs[1]!.handler, md5: false, sha256: AwsSha256 }))];
      const send = new SendMessageBatchCommand({ QueueUrl: 'http://127.0.0.1:1/000000000000/q', Entries: [{ Id: '0', MessageBody: '-----BEGIN PGP MESSAGE-----\n\nwcBMA\n' }] });
      for (const client of sqsClients) await client.send(send);

      const dynamo = [recording('{}'), recording('{}')];
      const dynamoClients = [fixedInvocationId(new DynamoDBClient({ ...config, credentials, requestHandler: dynamo[0]!.handler })), fixedInvocationId(new DynamoDBClient({ ...config, credentials, requestHandler: dynamo[1]!.handler, sha256: AwsSha256 }))];
      const update = new UpdateItemCommand({ TableName: 't', Key: { pk: { S: 'sub#1' } }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'step' }, ExpressionAttributeValues: { ':s': { S: 'queued' } } });
      for (const client of dynamoClients) await client.send(update);

      for (const [sdk, ours] of [sqs, dynamo]) {
        expect(ours!.headers[0]!.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=.*Signature=[0-9a-f]{64}$/);
        expect(ours!.headers[0]!.authorization).toBe(sdk!.headers[0]!.authorization);
        expect(ours!.headers[0]!['x-amz-date']).toBe(sdk!.headers[0]!['x-amz-date']);
        expect(ours!.headers[0]!['amz-sdk-invocation-id']).toBe('00000000-0000-4000-8000-000000000000');
      }
    }
  });

  it('is what the services\' SQS and state-store clients sign with', () => {
    const options = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } };
    expect(createSqsClient(options).config.sha256).toBe(AwsSha256);
    expect(createDynamoClient(options).config.sha256).toBe(AwsSha256);
  });
});
