// CPU per AWS SDK call in the calling process, the network left out: `node bench/sdkCallCpu.ts
// [rounds]`. Each client gets a request handler that answers at once with a canned response,
// so what is timed is the SDK's own work per call (middleware, serialising, signing, parsing).
// The state table's update is timed three ways, alternated in rounds: through the document
// client (what the table used before), with the plain client, and with the plain client and
// `cacheMiddleware` (what `openStateTable` uses now, with `@aws-sdk/util-dynamodb` marshalling
// the values as the table does). A measuring tool, not a section of `npm run bench`.
import { cpus } from 'node:os';
import { Readable } from 'node:stream';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';

/** A request handler that answers every request with `body` (HTTP 200), no socket. */
const cannedHandler = (body: string) => ({
  handle: async () => ({ response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Readable.from([Buffer.from(body)]) } }),
  updateHttpClientConfig: () => undefined,
  httpHandlerConfigs: () => ({}),
  destroy: () => undefined,
});

const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
const answer = JSON.stringify({ Attributes: marshall({ pk: 'sub#0190b9a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b', step: 'queued', at: 1_767_225_600_123, steps: [{ step: 'accepted', at: 1 }] }) });
const client = (cacheMiddleware: boolean): DynamoDBClient =>
  new DynamoDBClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials, cacheMiddleware, requestHandler: cannedHandler(answer) as never });

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
/** CPU µs per call (user + system of this process) over `CALLS` calls one after the other. */
async function cpuPerCall(op: () => Promise<unknown>): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await op();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / CALLS;
}

const rounds = Number(process.argv[2] ?? 5);
for (const [, op] of ways) for (let i = 0; i < 300; i++) await op(); // warm-up
const results = ways.map(() => [] as number[]);
for (let r = 0; r < rounds; r++) for (const [i, [, op]] of ways.entries()) results[i]!.push(await cpuPerCall(op));
console.log(`${cpus()[0]?.model ?? 'cpu'}, node ${process.version}; ${rounds} rounds of ${CALLS} UpdateItem calls each way, alternated; CPU µs per call (min / median)`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [i, [name]] of ways.entries()) {
  const xs = results[i]!;
  console.log(`  ${name.padEnd(40)} ${Math.round(Math.min(...xs))} / ${Math.round(median(xs))}   ratio to the document client ${(median(xs) / median(results[0]!)).toFixed(2)}`);
}
