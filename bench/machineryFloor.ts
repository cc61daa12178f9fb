// The least machinery the design asks of each service per 4 KiB message, against the crypto it asks,
// measured in one process in the same run: `node bench/machineryFloor.ts [rounds]`. It answers one
// question of (8): could any build of this design reach "machinery ≤ 20 % of a service's CPU per
// message"? 20 % allows the machinery a quarter of the crypto's CPU; this prints that budget beside
// a lower bound of what the machinery must do, timed piece by piece with the project's leanest paths
// and everything else (audit trail, logging, bookkeeping, the receipts' SQS calls) left out:
//
// - the interface, per submission: the partner's HTTP request read and answered (a bare `node:http`
//   server, no framework, no authentication); the three status writes the shared state asks of every
//   submission (`accepted` before the send, `queued` after it, `held` and `acknowledged` together from
//   the receipts: services/core/state/statusStore.ts over the state table's own calls, not the SDK's);
//   a tenth of a SendMessageBatch of ten entries (the fullest batch SQS takes, through the services'
//   SQS client). Its crypto: a seal of the 4 KiB envelope and the open of one receipt envelope.
// - the app, per message: the claim that makes the record exactly-once (services/core/state/applyLedger.ts)
//   and a 25th of a BatchWriteItem of `applied` marks (the fullest batch DynamoDB takes); a tenth of a
//   ReceiveMessage and of a DeleteMessageBatch of ten. Its crypto: the open of the 4 KiB
//   envelope and the seal of one receipt envelope.
// - and, below every client, the bare exchange: the same request bytes over `node:http` with no
//   signing and no JSON, answered at once: what three status writes would cost with no client at all;
//   and ten updates' bytes in one request, as a TransactWriteItems of ten submissions' steps would carry
//   them (DynamoDB's only way to write several items with conditions in one call).
//
// A child process answers every AWS request at once (canned JSON, the SQS answers with the bodies'
// real MD5s, which the SQS client checks), and a second child sends the partner requests; only this
// process's CPU is counted (`process.cpuUsage()`: every thread, V8's helpers and libuv's pool
// included, for the crypto as for the rest). Each piece is timed alternated in rounds with 16 (crypto)
// or 8 (calls) in flight; the medians are printed. The crypto runs on this thread as in the services
// on 2 cores (CRYPTO_INLINE). `--json` prints the result as one JSON line instead; `npm run bench` runs it
// so in a child process after (8) (`benchMachineryFloor`, 3 rounds) and prints the bounds under (8)'s lines.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, request, Agent, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { buildEnvelope } from '../services/core/envelope/envelope.ts';
import { installInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';
import { open } from '../services/core/envelope/open.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { encodeReceipt, RECEIPT_CONTENT_TYPE, RECEIPT_KIND } from '../services/core/receipts/receipt.ts';
import { createApplyLedger } from '../services/core/state/applyLedger.ts';
import { createStatusStore } from '../services/core/state/statusStore.ts';
import { openStateTable } from '../services/core/state/table.ts';
import { createSqsClient } from '../services/core/transport/sqsClient.ts';
import { SUBMISSION_RANKS } from '../services/interface/status/submissionStatus.ts';
import { uuidv7 } from '../services/core/envelope/uuidv7.ts';
import { benchInline, fhirPayload, makeBenchKeys, submissionEnvelope } from './lib.ts';

const SIZE = 4096;
const BATCH = 10;
const md5 = (text: string): string => createHash('md5').update(text).digest('hex');
const readAll = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

/** The AWS stand-in: every request answered at once, as DynamoDB and SQS would answer a success. */
function serveAws(): void {
  const owner = { owner: { S: 'bench-partner' } };
  let received: string[] = [];
  const server = createServer((req, res) => {
    void readAll(req).then((text) => {
      const op = String(req.headers['x-amz-target'] ?? '').split('.').at(-1);
      let answer: unknown = {};
      if (op === 'UpdateItem') answer = { Attributes: { pk: { S: 'p' }, ...owner, status: { S: 'queued' }, rank: { N: '1' } } };
      else if (op === 'SendMessageBatch') {
        const entries = (JSON.parse(text) as { Entries: { Id: string; MessageBody: string }[] }).Entries;
        received = entries.map((e) => e.MessageBody);
        answer = { Successful: entries.map((e) => ({ Id: e.Id, MessageId: uuidv7(), MD5OfMessageBody: md5(e.MessageBody) })), Failed: [] };
      } else if (op === 'ReceiveMessage') {
        answer = { Messages: received.map((body, i) => ({ MessageId: `m${i}`, ReceiptHandle: `h${i}-${'x'.repeat(300)}`, Body: body, MD5OfBody: md5(body), Attributes: { ApproximateReceiveCount: '1' } })) };
      } else if (op === 'DeleteMessageBatch') {
        answer = { Successful: (JSON.parse(text) as { Entries: { Id: string }[] }).Entries.map((e) => ({ Id: e.Id })), Failed: [] };
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'bench' });
      res.end(JSON.stringify(answer));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
}

/** The partners: `inFlight` keep-alive loops POSTing a 4 KiB body to the port given, until told to stop. */
function sendPartnerRequests(port: number, inFlight: number): void {
  const body = fhirPayload(SIZE);
  const agent = new Agent({ keepAlive: true, maxSockets: inFlight });
  let stopped = false;
  process.on('message', () => {
    stopped = true;
  });
  const post = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/submissions', agent, headers: { 'content-type': 'application/fhir+json', 'content-length': body.length, authorization: 'Bearer bench' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      // Once told to stop, a request cut by the server's close is expected; before that, a failed request ends
      // this process, which fails the measurement (`cpuPerRequest`) instead of spinning on errors.
      req.on('error', (err) => {
        if (!stopped) {
          console.error(`machineryFloor: a partner request failed: ${err.message}`);
          process.exit(1);
        }
        resolve();
      });
      req.end(body);
    });
  void Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (!stopped) await post();
    }),
  ).then(() => process.exit(0));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU µs (this process, all threads) per operation over `count` operations, `inFlight` at a time. */
async function cpuPerOp(op: () => Promise<unknown>, count: number, inFlight: number): Promise<number> {
  let left = count;
  const start = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (left-- > 0) await op();
    }),
  );
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

/** One service's crypto per message, what 20 % allows its machinery, and the lower bounds of it (CPU µs per message). */
export interface ServiceFloor {
  crypto: number;
  /** A quarter of the crypto: the machinery's CPU at a 20 % share. */
  allowance: number;
  /** The pieces made the leanest way the project has. */
  leanest: number;
  /** The same with every AWS call a bare exchange (no signing, no JSON). */
  bareExchanges: number;
  /** The interface: and its status writes ten to a request. */
  tenToARequest?: number;
  /** The machinery's least share: leanest / (leanest + crypto). */
  leastShare: number;
}

/** What {@link measure} found: each piece's median CPU µs per message, and each service's bounds. */
export interface MachineryFloor {
  rounds: number;
  pieces: { name: string; median: number; rounds: number[] }[];
  interface: ServiceFloor;
  app: ServiceFloor;
}

async function measure(rounds: number): Promise<MachineryFloor> {
  if (benchInline()) installInlineSubtle();
  const aws = fork(fileURLToPath(import.meta.url), ['serve-aws']);
  let measured = false;
  // The AWS stand-in ending early (a request it could not parse) would leave the calls unanswered: fail at once.
  aws.once('exit', (code) => {
    if (measured) return;
    console.error(`machineryFloor: the AWS stand-in ended early (exit ${code})`);
    process.exit(1);
  });
  const awsPort = await new Promise<number>((resolve) => aws.once('message', (m) => resolve(m as number)));
  const endpoint = `http://127.0.0.1:${awsPort}`;
  const options = { region: 'us-east-1', endpoint, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } };
  const table = openStateTable({ ...options, table: 'bench' });
  const statuses = createStatusStore({ table, prefix: 'submission', ranks: SUBMISSION_RANKS, ttlSeconds: 345_600 });
  const ledger = createApplyLedger({ table, holder: 'bench', leaseMs: 60_000, ttlSeconds: 345_600 });
  const sqs = createSqsClient(options);
  const queueUrl = `${endpoint}/000000000000/interface-to-app`;
  const keys = await makeBenchKeys();
  const ctx = { own: keys.app.keys.own, peers: keys.app.keys.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 };
  const envelope = submissionEnvelope(SIZE);
  const receipt = buildEnvelope({ kind: RECEIPT_KIND, from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'bench-partner', contentType: RECEIPT_CONTENT_TYPE, body: encodeReceipt({ ref: uuidv7(), status: 'acknowledged', at: new Date().toISOString() }) });
  const sealedBody = (await seal(envelope, keys.interface.keys.own, keys.interface.keys.peers)).body;
  const sealedReceipt = (await seal(receipt, keys.interface.keys.own, keys.interface.keys.peers)).body;
  const entries = Array.from({ length: BATCH }, (_, i) => ({ Id: String(i), MessageBody: sealedBody }));

  // The partner's request, read whole and answered 202 with the envelope id, by a bare node:http server.
  let served = 0;
  let wanted = 0;
  let onServed: (() => void) | undefined;
  const intake = createServer((req, res) => {
    void readAll(req).then((text) => {
      if (text.length < SIZE) throw new Error('short body');
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: uuidv7(), status: 'accepted' }));
      if (++served === wanted) onServed?.();
    });
  });
  await new Promise<void>((resolve) => intake.listen(0, '127.0.0.1', resolve));
  const intakePort = (intake.address() as AddressInfo).port;
  /** CPU µs of this process per partner request over `count` requests (16 clients in a child process). */
  const cpuPerRequest = async (count: number): Promise<number> => {
    served = 0;
    const partners: ChildProcess = fork(fileURLToPath(import.meta.url), ['partners', String(intakePort), '16']);
    let stopping = false;
    const exited = new Promise<void>((resolve) => partners.once('exit', () => resolve()));
    // A partner process that ends before it is told to (a crash) fails the measurement instead of leaving it waiting.
    const crashed = exited.then(() => {
      if (!stopping) throw new Error('machineryFloor: the partner requests\' process ended early');
    });
    const servedUpTo = (n: number): Promise<void> =>
      Promise.race([
        new Promise<void>((resolve) => {
          wanted = n;
          onServed = resolve;
        }),
        crashed,
      ]);
    // The count starts once the clients' connections are up: the first 200 requests are not timed.
    await servedUpTo(200);
    const start = process.cpuUsage();
    await servedUpTo(200 + count);
    const used = process.cpuUsage(start);
    stopping = true;
    partners.send('stop');
    await exited;
    return (used.user + used.system) / count;
  };

  // The bare exchange: an UpdateItem's bytes posted with no signing and no JSON work, the answer read whole.
  const bareAgent = new Agent({ keepAlive: true, maxSockets: 8 });
  const updateBytes = Buffer.from(JSON.stringify({ TableName: 'bench', Key: { pk: { S: `submission#${uuidv7()}` } }, UpdateExpression: 'SET #steps.#st = :step, #status = :st, #rank = :rank, #ttl = :ttl', ConditionExpression: 'attribute_exists(pk) AND #ttl >= :nowSec AND #rank < :rank', ExpressionAttributeNames: { '#steps': 'steps', '#st': 'queued', '#status': 'status', '#rank': 'rank', '#ttl': 'ttl' }, ExpressionAttributeValues: { ':step': { M: { at: { S: new Date().toISOString() } } }, ':st': { S: 'queued' }, ':rank': { N: '1' }, ':ttl': { N: '1767225600' }, ':nowSec': { N: '1767000000' } }, ReturnValues: 'ALL_NEW' }));
  // Ten of them in one request, as a TransactWriteItems of ten submissions' steps would carry them.
  const tenUpdatesBytes = Buffer.from(`{"TransactItems":[${Array.from({ length: 10 }, () => `{"Update":${updateBytes.toString('utf8')}}`).join(',')}]}`);
  const bareExchange = (bytes: Buffer) => (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: awsPort, method: 'POST', path: '/', agent: bareAgent, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.UpdateItem', 'content-length': bytes.length } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(bytes);
    });

  type Piece = { name: string; run: () => Promise<number> };
  const ops = (op: () => Promise<unknown>, count: number, inFlight: number, per = 1) => async () => (await cpuPerOp(op, count, inFlight)) / per;
  const pieces: Piece[] = [
    { name: 'seal, 4 KiB envelope', run: ops(() => seal(envelope, keys.interface.keys.own, keys.interface.keys.peers), 800, 16) },
    { name: 'open, 4 KiB envelope', run: ops(() => open(sealedBody, ctx), 800, 16) },
    { name: 'seal, a receipt envelope', run: ops(() => seal(receipt, keys.interface.keys.own, keys.interface.keys.peers), 800, 16) },
    { name: 'open, a receipt envelope', run: ops(() => open(sealedReceipt, ctx), 800, 16) },
    { name: 'HTTP intake, bare node:http, per request', run: () => cpuPerRequest(3000) },
    {
      name: 'status writes of a submission (3 calls)',
      run: ops(
        async () => {
          const id = uuidv7();
          await statuses.begin(id, 'bench-partner', 'accepted');
          await statuses.record(id, 'queued');
          await statuses.recordInTurn(id, [{ status: 'held' }, { status: 'acknowledged' }]);
        },
        1000,
        8,
      ),
    },
    { name: 'the app\'s claim (1 call)', run: ops(() => ledger.claim(uuidv7()), 2000, 8) },
    { name: 'applied marks, a BatchWriteItem of 25, per message', run: ops(() => table.putMany(Array.from({ length: 25 }, () => ({ pk: `apply#${uuidv7()}`, state: 'applied', appliedAt: new Date().toISOString(), ttl: 1_767_225_600 }))), 300, 4, 25) },
    { name: 'bare exchange, an UpdateItem\'s bytes, per call', run: ops(bareExchange(updateBytes), 3000, 8) },
    { name: 'bare exchange, ten updates in one request, per update', run: ops(bareExchange(tenUpdatesBytes), 1000, 8, 10) },
    { name: 'SendMessageBatch of 10, per message', run: ops(() => sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries })), 300, 4, BATCH) },
    {
      name: 'ReceiveMessage + DeleteMessageBatch of 10, per message',
      run: ops(
        async () => {
          const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: BATCH, WaitTimeSeconds: 20, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }), { abortSignal: new AbortController().signal });
          await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: (got.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        },
        300,
        4,
        BATCH,
      ),
    },
  ];

  // Warm-up: each piece once untimed (V8 compiles the hot paths, the sockets open), then the rounds.
  for (const piece of pieces) await piece.run();
  await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
  const results = pieces.map((): number[] => []);
  for (let r = 0; r < rounds; r++) for (const [i, piece] of pieces.entries()) results[i]!.push(await piece.run());
  const m = pieces.map((_, i) => median(results[i]!));
  const [sealBig, openBig, sealReceipt, openReceipt, http, statusWrites, claim, marks, bare, bareInTen, sendShare, receiveShare] = m as [number, number, number, number, number, number, number, number, number, number, number, number];
  const service = (crypto: number, leanest: number, bareExchanges: number, tenToARequest?: number): ServiceFloor => ({
    crypto: Math.round(crypto),
    allowance: Math.round(crypto / 4),
    leanest: Math.round(leanest),
    bareExchanges: Math.round(bareExchanges),
    ...(tenToARequest === undefined ? {} : { tenToARequest: Math.round(tenToARequest) }),
    leastShare: leanest / (leanest + crypto),
  });
  const floor: MachineryFloor = {
    rounds,
    pieces: pieces.map((piece, i) => ({ name: piece.name, median: Math.round(m[i]!), rounds: results[i]!.map((x) => Math.round(x)) })),
    interface: service(sealBig + openReceipt, http + statusWrites + sendShare, http + 3 * bare + bare / BATCH, http + 3 * bareInTen + bare / BATCH),
    app: service(openBig + sealReceipt, claim + marks + receiveShare, bare + bare / 25 + (2 * bare) / BATCH),
  };
  measured = true;
  intake.close();
  bareAgent.destroy();
  sqs.destroy();
  await table.close();
  await keys.cleanup();
  aws.kill();
  return floor;
}

/** The lines `node bench/machineryFloor.ts` prints (and `npm run bench` under (8)). */
export function reportMachineryFloor(floor: MachineryFloor, withPieces = true): string[] {
  const lines = withPieces ? floor.pieces.map((p) => `  ${p.name.padEnd(56)} median ${String(p.median).padStart(5)} µs  (rounds: ${p.rounds.join(', ')})`) : [];
  const x = (us: number, s: ServiceFloor): string => `${us} µs (${(us / s.allowance).toFixed(2)} × the allowance, share ≥ ${((100 * us) / (us + s.crypto)).toFixed(1)} %)`;
  for (const [name, s] of [
    ['interface', floor.interface],
    ['app', floor.app],
  ] as const) {
    lines.push(`  ${name}: crypto ${s.crypto} µs per message, 20 % allows the machinery ${s.allowance} µs; its lower bound ${x(s.leanest, s)}; every AWS call a bare exchange ${x(s.bareExchanges, s)}${s.tenToARequest === undefined ? '' : `; and the status writes ten to a request ${x(s.tenToARequest, s)}`}`);
  }
  return lines;
}

/** Runs this script in a child process (away from the bench process's emulators and heap) and reads its result. */
export async function benchMachineryFloor(rounds: number): Promise<MachineryFloor> {
  const child = fork(fileURLToPath(import.meta.url), [String(rounds), '--json'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`bench/machineryFloor.ts exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as MachineryFloor;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === 'serve-aws') serveAws();
  else if (process.argv[2] === 'partners') sendPartnerRequests(Number(process.argv[3]), Number(process.argv[4]));
  else {
    const rounds = Number(process.argv[2] ?? 5);
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a whole number ≥ 1, not ${process.argv[2]}`);
    const floor = await measure(rounds);
    if (process.argv.includes('--json')) console.log(JSON.stringify(floor));
    else {
      console.log(`${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; ${rounds} rounds, each piece timed once per round, alternated; CPU µs of this process (all threads)`);
      console.log(reportMachineryFloor(floor).join('\n'));
    }
  }
}
