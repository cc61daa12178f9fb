// The state table's own DynamoDB JSON calls (services/core/state/dynamoJson.ts) against a scripted
// endpoint on a real socket: every request signed exactly as the SDK's signer signs it, the
// SDK's retry rules (5xx, throttling, broken connections, a skewed clock; never a failed
// condition or a bad request), timeouts, and the endpoint of a region without one configured.
// The calls' effects on a real store are test/core/state/state.test.ts (through openStateTable).
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/core/protocols';
import { afterEach, describe, expect, it } from 'vitest';
import { createDynamoJson, DynamoCallError, type DynamoJson } from '../../../services/core/state/dynamoJson.ts';
import { createDynamoClient } from '../../../services/core/state/table.ts';

/** A request the scripted endpoint saw. */
interface Seen {
  headers: IncomingMessage['headers'];
  body: string;
}
/** What the endpoint does with the n-th request (0-based): answer, or handle the response itself. */
type Script = (n: number, seen: Seen, res: ServerResponse) => { status: number; body: string; headers?: Record<string, string> } | 'handled';

const servers: Server[] = [];
const callers: DynamoJson[] = [];
afterEach(async () => {
  for (const c of callers.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function endpoint(script: Script): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const out = script(seen.length - 1, s, res);
      if (out === 'handled') return;
      res.writeHead(out.status, { 'content-type': 'application/x-amz-json-1.0', ...out.headers });
      res.end(out.body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const ok = (body: unknown = {}) => ({ status: 200, body: JSON.stringify(body) });
const fault = (status: number, type: string, message = 'no', headers?: Record<string, string>) => ({ status, body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }), ...(headers ? { headers } : {}) });
const FIXED = Date.parse('2026-11-30T23:59:58.000Z');

function caller(url: string, extra: { credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }; maxAttempts?: number; socketTimeoutMs?: number; now?: () => number } = {}): { json: DynamoJson; delays: number[] } {
  const delays: number[] = [];
  const client = createDynamoClient({ region: 'eu-west-2', endpoint: url, credentials: extra.credentials ?? { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' } });
  const json = createDynamoJson({
    client,
    region: 'eu-west-2',
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
    },
    now: extra.now ?? (() => FIXED),
    ...(extra.maxAttempts ? { maxAttempts: extra.maxAttempts } : {}),
    ...(extra.socketTimeoutMs ? { socketTimeoutMs: extra.socketTimeoutMs } : {}),
  });
  callers.push(json);
  return { json, delays };
}

/** SHA-256 for the SDK's signer, from node:crypto (what the SDK uses on Node). */
type Source = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: Source): Buffer => (typeof data === 'string' ? Buffer.from(data, 'utf8') : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data));
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: Source) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Source): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

/** The Authorization header the SDK's own signer gives the request as it was seen (same time, same headers signed). */
async function sdkSignature(seen: Seen, url: string, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): Promise<string> {
  const { hostname, port } = new URL(url);
  const signed = ['content-type', 'host', 'x-amz-date', 'x-amz-target', ...(credentials.sessionToken ? ['x-amz-security-token'] : [])];
  const headers = Object.fromEntries(signed.map((h) => [h, String(seen.headers[h])]));
  const request = new HttpRequest({ method: 'POST', protocol: 'http:', hostname, port: Number(port), path: '/', headers, body: seen.body });
  const signer = new SignatureV4({ credentials, region: 'eu-west-2', service: 'dynamodb', sha256: NodeSha256, uriEscapePath: true, applyChecksum: false });
  const out = await signer.sign(request, { signingDate: new Date(FIXED), unsignableHeaders: new Set(['content-length', 'user-agent', 'connection']) });
  return String(out.headers.authorization);
}

describe('DynamoDB JSON calls', () => {
  it('signs every request as the SDK signer does, with the target, content type and body DynamoDB reads', async () => {
    const { url, seen } = await endpoint(() => ok({ Attributes: { pk: { S: 'a' } } }));
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
    const { json } = caller(url, { credentials });
    const input = { TableName: 't', Key: { pk: { S: 'a' } }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'step' }, ExpressionAttributeValues: { ':s': { S: 'queued' }, ':n': { N: '3' } }, ReturnValues: 'ALL_NEW' };
    expect(await json.call('UpdateItem', input)).toEqual({ Attributes: { pk: { S: 'a' } } });
    const [req] = seen;
    expect(req!.headers['x-amz-target']).toBe('DynamoDB_20120810.UpdateItem');
    expect(req!.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(req!.headers['x-amz-date']).toBe('20261130T235958Z');
    expect(JSON.parse(req!.body)).toEqual(input);
    expect(req!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261130\/eu-west-2\/dynamodb\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/);
    expect(req!.headers.authorization).toBe(await sdkSignature(req!, url, credentials));
    // A second call, with the signing key kept from the first.
    expect(await json.call('GetItem', { TableName: 't', Key: { pk: { S: 'a' } } })).toBeDefined();
    expect(seen[1]!.headers.authorization).toBe(await sdkSignature(seen[1]!, url, credentials));
  });

  it('sends and signs the session token of temporary credentials; a new secret makes a new signing key', async () => {
    const { url, seen } = await endpoint(() => ok());
    const temporary = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret-one-secret-one-secret-one', sessionToken: 'token/with+chars==' };
    await caller(url, { credentials: temporary }).json.call('DeleteItem', { TableName: 't', Key: { pk: { S: 'x' } } });
    expect(seen[0]!.headers['x-amz-security-token']).toBe(temporary.sessionToken);
    expect(seen[0]!.headers.authorization).toContain('SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,');
    expect(seen[0]!.headers.authorization).toBe(await sdkSignature(seen[0]!, url, temporary));
    const other = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret-two-secret-two-secret-two', sessionToken: 'token/with+chars==' };
    await caller(url, { credentials: other }).json.call('DeleteItem', { TableName: 't', Key: { pk: { S: 'x' } } });
    expect(seen[1]!.headers.authorization).toBe(await sdkSignature(seen[1]!, url, other));
    expect(seen[1]!.headers.authorization).not.toBe(seen[0]!.headers.authorization);
  });

  it('retries a 5xx and a throttled call with backoff (a longer base for throttling), up to three attempts', async () => {
    const flaky = await endpoint((n) => (n === 0 ? { status: 500, body: 'not json' } : ok({ Item: { pk: { S: 'a' } } })));
    const a = caller(flaky.url);
    expect(await a.json.call('GetItem', { TableName: 't' })).toEqual({ Item: { pk: { S: 'a' } } });
    expect(flaky.seen).toHaveLength(2);
    expect(a.delays).toEqual([50]);

    const throttled = await endpoint(() => fault(400, 'ProvisionedThroughputExceededException', 'slow down'));
    const b = caller(throttled.url);
    const err = await b.json.call('PutItem', { TableName: 't' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DynamoCallError);
    expect(err).toMatchObject({ name: 'ProvisionedThroughputExceededException', message: 'slow down', $metadata: { httpStatusCode: 400, attempts: 3 } });
    expect(throttled.seen).toHaveLength(3);
    expect(b.delays).toEqual([250, 500]);
  });

  it('stops retrying once the retry quota is spent (when most calls fail), and a call answered gives some back', async () => {
    let failing = true;
    const { url, seen } = await endpoint(() => (failing ? fault(503, 'InternalServerError') : ok()));
    const { json } = caller(url);
    // 500 to spend, 5 a retry, two retries a call: 50 calls make three attempts each, the 51st one.
    for (let i = 0; i < 51; i++) await expect(json.call('GetItem', { TableName: 't' })).rejects.toMatchObject({ name: 'InternalServerError' });
    expect(seen).toHaveLength(50 * 3 + 1);
    await expect(json.call('GetItem', { TableName: 't' })).rejects.toMatchObject({ $metadata: { attempts: 1 } });
    // Five calls answered at once give back 5: one retry again.
    failing = false;
    for (let i = 0; i < 5; i++) await json.call('GetItem', { TableName: 't' });
    failing = true;
    await expect(json.call('GetItem', { TableName: 't' })).rejects.toMatchObject({ $metadata: { attempts: 2 } });
  });

  it('never retries a failed condition or a bad request: the error carries its name and, when asked for, the item', async () => {
    const { url, seen } = await endpoint((n) =>
      n === 0 ? { status: 400, body: JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed', Item: { pk: { S: 'a' } } }) } : fault(400, 'ValidationException', 'bad expression'),
    );
    const { json, delays } = caller(url);
    await expect(json.call('PutItem', { TableName: 't' })).rejects.toMatchObject({ name: 'ConditionalCheckFailedException', Item: { pk: { S: 'a' } }, $metadata: { attempts: 1 } });
    await expect(json.call('PutItem', { TableName: 't' })).rejects.toMatchObject({ name: 'ValidationException', message: 'bad expression' });
    expect(seen).toHaveLength(2);
    expect(delays).toEqual([]);
  });

  it('retries a connection the store cut, and gives up on one that stays silent (TimeoutError)', async () => {
    const cut = await endpoint((n, _s, res) => {
      if (n === 0) {
        res.socket?.destroy();
        return 'handled';
      }
      return ok();
    });
    const a = caller(cut.url);
    expect(await a.json.call('PutItem', { TableName: 't' })).toEqual({});
    expect(cut.seen).toHaveLength(2);

    const silent = await endpoint(() => 'handled');
    const b = caller(silent.url, { maxAttempts: 2, socketTimeoutMs: 200 });
    await expect(b.json.call('PutItem', { TableName: 't' })).rejects.toMatchObject({ name: 'TimeoutError', $metadata: { attempts: 2 } });
    expect(silent.seen).toHaveLength(2);
  });

  it('re-times a request the store finds too far from its clock, from the answer`s Date, and keeps the correction', async () => {
    const ahead = new Date(FIXED + 3_600_000).toUTCString();
    const { url, seen } = await endpoint((n) => (n === 0 ? fault(400, 'InvalidSignatureException', 'Signature expired', { date: ahead }) : ok()));
    const { json } = caller(url);
    expect(await json.call('PutItem', { TableName: 't' })).toEqual({});
    expect(seen.map((s) => s.headers['x-amz-date'])).toEqual(['20261130T235958Z', '20261201T005958Z']);
    await json.call('PutItem', { TableName: 't' });
    expect(seen[2]!.headers['x-amz-date']).toBe('20261201T005958Z');
  });

  it('writes binary values as DynamoDB`s JSON has them (base64)', async () => {
    const { url, seen } = await endpoint(() => ok());
    await caller(url).json.call('PutItem', { TableName: 't', Item: { pk: { S: 'b' }, data: { B: new Uint8Array([1, 2, 3, 250]) } } });
    expect(JSON.parse(seen[0]!.body)).toEqual({ TableName: 't', Item: { pk: { S: 'b' }, data: { B: 'AQID+g==' } } });
  });

  it('a signature refused for another reason than time is not retried', async () => {
    const { url, seen } = await endpoint(() => fault(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'));
    await expect(caller(url).json.call('GetItem', { TableName: 't' })).rejects.toMatchObject({ name: 'UnrecognizedClientException' });
    expect(seen).toHaveLength(1);
  });

  it('calls go where the SDK client would send them: its endpoint, AWS_ENDPOINT_URL_DYNAMODB, else the region`s own', async () => {
    const where = async (config: NonNullable<ConstructorParameters<typeof DynamoDBClient>[0]>): Promise<string> => {
      const json = createDynamoJson({ client: new DynamoDBClient({ credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, ...config }), region: String(config.region) });
      callers.push(json);
      const url = await json.endpoint();
      return `${url.protocol}//${url.host}${url.pathname}`;
    };
    expect(await where({ region: 'eu-west-2' })).toBe('https://dynamodb.eu-west-2.amazonaws.com/');
    expect(await where({ region: 'cn-north-1' })).toBe('https://dynamodb.cn-north-1.amazonaws.com.cn/');
    expect(await where({ region: 'us-east-1', useFipsEndpoint: true })).toBe('https://dynamodb-fips.us-east-1.amazonaws.com/');
    expect(await where({ region: 'eu-west-2', endpoint: 'http://127.0.0.1:4566' })).toBe('http://127.0.0.1:4566/');
    const saved = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = 'http://localhost:8000';
    try {
      expect(await where({ region: 'eu-west-2' })).toBe('http://localhost:8000/');
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = saved;
    }
  });
});
