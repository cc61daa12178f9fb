// CPU per AWS SDK call in the calling process, the network left out: `node bench/sdkCallCpu.ts
// [rounds]`. Each client gets a request handler that answers at once with a canned response,
// so what is timed is the SDK's own work per call (middleware, serialising, signing, parsing).
// Four comparisons, each alternated in rounds:
// - the state table's update three ways: through the document client (what the table used
//   before), with the plain client, and with the plain client and `cacheMiddleware` (what
//   `openStateTable` used until its calls left the SDK's pipeline, with `@aws-sdk/util-dynamodb`
//   marshalling the values as the table does);
// - SendMessageBatch of one armored body of 4, 64 and 256 KiB, with the SDK's default JSON codec
//   and with `SqsJsonProtocol` (what `createSqsClient` uses now: bodies written by JSON.stringify);
// - request signing: the state table's update and a 4 KiB SendMessageBatch with the SDK's own
//   `sha256` and with `AwsSha256` (what both services' clients use now: each HMAC key made once);
// - the SQS calls a relayed message meets (SendMessageBatch, ReceiveMessage, DeleteMessageBatch of
//   three 4 KiB messages each, bodies' MD5s checked as the services' client checks them), with the
//   middleware stack resolved on every call (what `createSqsClient` does: each long-poll receive passes
//   its abort signal) and with `cacheMiddleware` and a receive without options (what a second client
//   for the receives would allow).
// A measuring tool, not a section of `npm run bench`.
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { Readable } from 'node:stream';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { AwsSha256 } from '../services/core/runtime/awsSha256.ts';
import { SqsJsonProtocol } from '../services/core/transport/sqsClient.ts';

/** A request handler that answers every request with `body` (HTTP 200), no socket. */
const cannedHandler = (body: string) => ({
  handle: async () => ({ response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Readable.from([Buffer.from(body)]) } }),
  updateHttpClientConfig: () => undefined,
  httpHandlerConfigs: () => ({}),
  destroy: () => undefined,
});

const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
const answer = JSON.stringify({ Attributes: marshall({ pk: 'sub#0190b9a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b', step: 'queued', at: 1_767_225_600_123, steps: [{ step: 'accepted', at: 1 }] }) });
const client = (cacheMiddleware: boolean, sha256?: typeof AwsSha256): DynamoDBClient =>
  new DynamoDBClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials, cacheMiddleware, requestHandler: cannedHandler(answer) as never, ...(sha256 ? { sha256 } : {}) });

// The same update as the interface's `queued` step: a conditional SET with names and values.
const change = { UpdateExpression: 'SET #s = :s, #at = :at', ConditionExpression: '#s = :was', ExpressionAttributeNames: { '#s': 'step', '#at': 'at' } };
const values = { ':s': 'queued', ':at': 1_767_225_600_123, ':was': 'accepted' };
const pk = 'sub#0190b9a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b';

const doc = DynamoDBDocumentClient.from(client(false), { marshallOptions: { removeUndefinedValues: true } });
const plain = client(false);
const cached = client(true);
const ways: [string, () => Promise<unknown>][] = [
  ['document client (before)', () => doc.send(new UpdateCommand({ TableName: 't', Key: { pk }, ...change, ExpressionAttributeValues: values, ReturnValues: 'ALL_NEW' }))],
  ['plain client', async () => unmarshall((await plain.send(new UpdateItemCommand({ TableName: 't', Key: marshall({ pk }), ...change, ExpressionAttributeValues: marshall(values), ReturnValues: 'ALL_NEW' }))).Attributes!)],
  ['plain client, cacheMiddleware (now)', async () => unmarshall((await cached.send(new UpdateItemCommand({ TableName: 't', Key: marshall({ pk }), ...change, ExpressionAttributeValues: marshall(values), ReturnValues: 'ALL_NEW' }))).Attributes!)],
];

const CALLS = 2000;
/** CPU µs per call (user + system of this process) over `calls` calls one after the other. */
async function cpuPerCall(op: () => Promise<unknown>, calls = CALLS): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await op();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Times `ways` alternated in `rounds` rounds and prints min / median per call and each median's ratio to the first way's. */
async function compare(title: string, ways: [string, () => Promise<unknown>][], rounds: number, calls: number): Promise<void> {
  for (const [, op] of ways) for (let i = 0; i < 300; i++) await op(); // warm-up
  const results = ways.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) for (const [i, [, op]] of ways.entries()) results[i]!.push(await cpuPerCall(op, calls));
  console.log(`${title}: ${rounds} rounds of ${calls} calls each way, alternated; CPU µs per call (min / median)`);
  for (const [i, [name]] of ways.entries()) {
    const xs = results[i]!;
    console.log(`  ${name.padEnd(44)} ${Math.round(Math.min(...xs))} / ${Math.round(median(xs))}   ratio to the first ${(median(xs) / median(results[0]!)).toFixed(2)}`);
  }
}

const rounds = Number(process.argv[2] ?? 5);
console.log(`${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
await compare('UpdateItem (the state table)', ways, rounds, CALLS);

// SendMessageBatch: one entry, an armored body of the size (base64 in lines of 60, as `seal` writes it).
const sqsAnswer = JSON.stringify({ Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: 'x' }], Failed: [] });
// md5 off here only because the canned answer cannot know each body's MD5; both ways alike.
const sqsClient = (protocol?: typeof SqsJsonProtocol, sha256?: typeof AwsSha256): SQSClient =>
  new SQSClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials, cacheMiddleware: true, md5: false, requestHandler: cannedHandler(sqsAnswer) as never, ...(protocol ? { protocol } : {}), ...(sha256 ? { sha256 } : {}) });
const sdkDefault = sqsClient();
const stringify = sqsClient(SqsJsonProtocol);
for (const kib of [4, 64, 256]) {
  const b64 = Buffer.alloc(Math.ceil(kib * 1024 * 1.05), 0x5a).toString('base64');
  const body = `-----BEGIN PGP MESSAGE-----\n\n${b64.replace(/(.{60})/g, '$1\n')}\n=AAAA\n-----END PGP MESSAGE-----\n`;
  const send = (client: SQSClient) => () => client.send(new SendMessageBatchCommand({ QueueUrl: 'http://127.0.0.1:1/000000000000/q', Entries: [{ Id: '0', MessageBody: body }] }));
  await compare(`SendMessageBatch, ${kib} KiB armored body`, [['the SDK default codec (before)', send(sdkDefault)], ['SqsJsonProtocol, JSON.stringify (now)', send(stringify)]], rounds, kib >= 64 ? 300 : 1000);
}

// Request signing: the SDK's own sha256 (an HMAC key made from bytes on every HMAC) against AwsSha256.
const armored = `-----BEGIN PGP MESSAGE-----\n\n${Buffer.alloc(4300, 0x5a).toString('base64').replace(/(.{60})/g, '$1\n')}\n=AAAA\n-----END PGP MESSAGE-----\n`;
const update = (c: DynamoDBClient) => async () =>
  unmarshall((await c.send(new UpdateItemCommand({ TableName: 't', Key: marshall({ pk }), ...change, ExpressionAttributeValues: marshall(values), ReturnValues: 'ALL_NEW' }))).Attributes!);
const batch = (c: SQSClient) => () => c.send(new SendMessageBatchCommand({ QueueUrl: 'http://127.0.0.1:1/000000000000/q', Entries: [{ Id: '0', MessageBody: armored }] }));
await compare('UpdateItem, request signing', [['the SDK\'s sha256 (before)', update(cached)], ['AwsSha256 (now)', update(client(true, AwsSha256))]], rounds, CALLS);
await compare('SendMessageBatch 4 KiB, request signing', [['the SDK\'s sha256 (before)', batch(stringify)], ['AwsSha256 (now)', batch(sqsClient(SqsJsonProtocol, AwsSha256))]], rounds, 1000);

// The middleware stack resolved per call or kept: a send, a receive and a delete of three 4 KiB messages.
const md5Hex = (text: string): string => createHash('md5').update(text).digest('hex');
const threeEntries = [0, 1, 2].map((i) => ({ Id: String(i), MessageBody: armored, MessageAttributes: { kind: { DataType: 'String', StringValue: 'care.submission' } } }));
const handle = 'h'.repeat(300);
const sqsAnswers = (request: { headers: Record<string, string> }): string => {
  const op = request.headers['x-amz-target']!.split('.').at(-1);
  if (op === 'SendMessageBatch') return JSON.stringify({ Successful: threeEntries.map((e) => ({ Id: e.Id, MessageId: `m${e.Id}`, MD5OfMessageBody: md5Hex(armored) })), Failed: [] });
  if (op === 'DeleteMessageBatch') return JSON.stringify({ Successful: threeEntries.map((e) => ({ Id: e.Id })), Failed: [] });
  return JSON.stringify({ Messages: threeEntries.map((e) => ({ MessageId: `m${e.Id}`, ReceiptHandle: handle, Body: armored, MD5OfBody: md5Hex(armored), Attributes: { ApproximateReceiveCount: '1' } })) });
};
const relayClient = (cacheMiddleware: boolean): SQSClient =>
  new SQSClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials, cacheMiddleware, protocol: SqsJsonProtocol, sha256: AwsSha256, requestHandler: { ...cannedHandler(''), handle: async (request: { headers: Record<string, string> }) => ({ response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Readable.from([Buffer.from(sqsAnswers(request))]) } }) } as never });
const queueUrl = 'http://127.0.0.1:1/000000000000/q';
const receive = new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
const relayCalls = (c: SQSClient, withSignal: boolean) => async () => {
  await c.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: threeEntries }));
  await (withSignal ? c.send(receive, { abortSignal: new AbortController().signal }) : c.send(receive));
  await c.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: threeEntries.map((e) => ({ Id: e.Id, ReceiptHandle: handle })) }));
};
await compare('SendMessageBatch + ReceiveMessage + DeleteMessageBatch, 3 × 4 KiB (per trio)', [['stack resolved per call (now)', relayCalls(relayClient(false), true)], ['cacheMiddleware, receive without options', relayCalls(relayClient(true), false)]], rounds, 1000);
