// CPU per state-table call in the calling process, over a real socket: `node bench/stateCallCpu.ts
// [rounds]`. A child process answers every request at once with a canned UpdateItem answer, so
// what is timed is the caller's own work per call: building, signing and sending the request,
// reading and parsing the answer. The interface's `queued` update two ways, alternated in rounds,
// one call at a time and 8 in flight:
// - through the SDK's DynamoDB client (`createDynamoClient`, with `cacheMiddleware` and `AwsSha256`:
//   how the state table made its calls before);
// - through the state table (`openStateTable(...).update`: its own JSON calls, state/dynamoJson.ts).
// A measuring tool, not a section of `npm run bench`.
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { createDynamoClient, openStateTable } from '../services/core/state/table.ts';

const answer = JSON.stringify({ Attributes: marshall({ pk: 'submission#0190b9a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b', status: 'queued', rank: 1, ttl: 1_767_225_600 }) });

if (process.argv[2] === 'serve') {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'bench' });
      res.end(answer);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
} else {
  const rounds = Number(process.argv[2] ?? 5);
  const child = fork(fileURLToPath(import.meta.url), ['serve']);
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const endpoint = `http://127.0.0.1:${port}`;
  const options = { region: 'us-east-1', endpoint, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } };
  const sdk = createDynamoClient(options);
  const table = openStateTable({ ...options, table: 't' });
  const pk = 'submission#0190b9a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b';
  // The interface's `queued` step: a conditional SET with names and values.
  const change = { update: 'SET #s = :s, #r = :r', condition: '#r < :r', names: { '#s': 'status', '#r': 'rank' }, values: { ':s': 'queued', ':r': 1 } };
  const ways: [string, () => Promise<unknown>][] = [
    [
      'SDK client (before)',
      async () =>
        unmarshall(
          (
            await sdk.send(
              new UpdateItemCommand({ TableName: 't', Key: marshall({ pk }), UpdateExpression: change.update, ConditionExpression: change.condition, ExpressionAttributeNames: change.names, ExpressionAttributeValues: marshall(change.values), ReturnValues: 'ALL_NEW' }),
            )
          ).Attributes!,
        ),
    ],
    ['state table, own JSON calls (now)', () => table.update(pk, change)],
  ];
  /** CPU µs per call of this process over `calls` calls, `inFlight` at a time. */
  const cpuPerCall = async (op: () => Promise<unknown>, calls: number, inFlight: number): Promise<number> => {
    const start = process.cpuUsage();
    let left = calls;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (left-- > 0) await op();
      }),
    );
    const used = process.cpuUsage(start);
    return (used.user + used.system) / calls;
  };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; ${rounds} rounds of 2,000 calls each way`);
  for (const inFlight of [1, 8]) {
    for (const [, op] of ways) await cpuPerCall(op, 500, inFlight);
    const per = ways.map((): number[] => []);
    for (let r = 0; r < rounds; r++) for (const [i, [, op]] of ways.entries()) per[i]!.push(await cpuPerCall(op, 2000, inFlight));
    const base = median(per[0]!);
    for (const [i, [name]] of ways.entries()) {
      console.log(`  ${inFlight} in flight, ${name.padEnd(36)} median ${median(per[i]!).toFixed(0).padStart(5)} µs (min ${Math.min(...per[i]!).toFixed(0).padStart(5)})  ${(median(per[i]!) / base).toFixed(2)}`);
    }
  }
  await table.close();
  sdk.destroy();
  child.kill();
}
