import { Readable } from 'node:stream';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqsClient, SqsJsonProtocol } from '../../../services/core/transport/sqsClient.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';

/** Every UTF-16 unit JSON must escape or may trip a writer: controls, quote, backslash, U+2028/9, a pair, lone surrogates, non-ASCII. */
const TRICKY = `${Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c)).join('')}"\\/ </script> é ß 中文 \u2028\u2029 \u{1F600} \uD800 x \uDFFF \u007F\u0080\uFFFF -----BEGIN PGP MESSAGE-----\n\nwcBMA+/=\n`;

interface Captured {
  body: string;
  headers: Record<string, string>;
}

/** A client whose requests are recorded and answered at once with `answer`, without a socket. */
function capturingClient(answer: { status: number; body: string; headers?: Record<string, string> }, config: Partial<SQSClientConfig> = {}): { client: SQSClient; requests: Captured[] } {
  const requests: Captured[] = [];
  const client = new SQSClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    md5: false,
    maxAttempts: 1,
    ...config,
    requestHandler: {
      handle: async (request: { body?: unknown; headers: Record<string, string> }) => {
        const body = request.body;
        const text = typeof body === 'string' ? body : body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : String(body);
        requests.push({ body: text, headers: { ...request.headers } });
        return {
          response: {
            statusCode: answer.status,
            headers: { 'content-type': 'application/x-amz-json-1.0', ...answer.headers },
            body: Readable.from([Buffer.from(answer.body)]),
          },
        };
      },
      updateHttpClientConfig: () => undefined,
      httpHandlerConfigs: () => ({}),
      destroy: () => undefined,
    } as never,
  });
  return { client, requests };
}

const queueUrl = 'http://127.0.0.1:1/000000000000/care-relay-interface-to-app';
const attributes = {
  'cr-version': { DataType: 'String', StringValue: '1' },
  'cr-envelope-id': { DataType: 'String', StringValue: TRICKY },
  raw: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 2, 250, 255]) },
};

/** One command of every SQS operation the services call, with every field they set. */
const commands = () => [
  new SendMessageBatchCommand({
    QueueUrl: queueUrl,
    Entries: [
      { Id: '0', MessageBody: TRICKY, MessageAttributes: attributes },
      { Id: '1', MessageBody: 'x'.repeat(70_000), MessageGroupId: 'g', MessageDeduplicationId: 'd', DelaySeconds: 0 },
    ],
  }),
  new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: TRICKY, MessageAttributes: attributes, DelaySeconds: 5 }),
  new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, VisibilityTimeout: 30, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'], ReceiveRequestAttemptId: 'r' }),
  new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: '0', ReceiptHandle: TRICKY }] }),
  new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: '0', ReceiptHandle: 'h', VisibilityTimeout: 0 }] }),
  new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'RedrivePolicy'] }),
  new GetQueueUrlCommand({ QueueName: 'care-relay-interface-to-app' }),
  new CreateQueueCommand({ QueueName: 'q.fifo', Attributes: { FifoQueue: 'true', VisibilityTimeout: '30' }, tags: { service: 'care-relay' } }),
];

/** What identifies a request besides its signature and the time: the body and the protocol headers. */
const protocolHeaders = (h: Record<string, string>) => ({ 'content-type': h['content-type'], 'x-amz-target': h['x-amz-target'], 'x-amzn-query-mode': h['x-amzn-query-mode'], 'content-length': h['content-length'] });

describe('the SQS client writes request bodies with JSON.stringify', () => {
  it('sends exactly the bytes and protocol headers of the SDK default for every SQS operation the services call', async () => {
    const ours = capturingClient({ status: 200, body: '{}' }, { protocol: SqsJsonProtocol });
    const sdk = capturingClient({ status: 200, body: '{}' });
    for (const command of commands()) await ours.client.send(command as never);
    for (const command of commands()) await sdk.client.send(command as never);
    expect(ours.requests).toHaveLength(commands().length);
    for (const [i, request] of ours.requests.entries()) {
      expect(request.body).toBe(sdk.requests[i]!.body);
      expect(protocolHeaders(request.headers)).toEqual(protocolHeaders(sdk.requests[i]!.headers));
    }
    // The bodies are JSON a peer can read: the tricky text comes back whole.
    const sent = JSON.parse(ours.requests[0]!.body) as { Entries: Array<{ MessageBody: string; MessageAttributes: Record<string, { BinaryValue?: string }> }> };
    expect(sent.Entries[0]!.MessageBody).toBe(TRICKY);
    expect(sent.Entries[0]!.MessageAttributes.raw!.BinaryValue).toBe(Buffer.from([0, 1, 2, 250, 255]).toString('base64'));
  });

  it('createSqsClient uses it', () => {
    const client = createSqsClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    try {
      expect(client.config.protocol).toBeInstanceOf(SqsJsonProtocol);
    } finally {
      client.destroy();
    }
  });

  it('reads responses and maps SQS errors to the same error classes as the SDK default', async () => {
    const error = {
      status: 400,
      body: JSON.stringify({ __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' }),
      headers: { 'x-amzn-query-error': 'AWS.SimpleQueueService.NonExistentQueue;Sender' },
    };
    const outcomes = await Promise.all(
      [{ protocol: SqsJsonProtocol }, {}].map(async (config) => {
        const { client } = capturingClient(error, config);
        const err = (await client.send(new GetQueueUrlCommand({ QueueName: 'missing' })).catch((e: unknown) => e)) as Error & { Code?: string; $fault?: string };
        return { name: err.name, code: err.Code, fault: err.$fault, message: err.message, ctor: err.constructor.name };
      }),
    );
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]!.name).toBe('QueueDoesNotExist');

    const received = { Messages: [{ MessageId: 'm', ReceiptHandle: 'h', Body: TRICKY, Attributes: { ApproximateReceiveCount: '2' }, MessageAttributes: { 'cr-version': { DataType: 'String', StringValue: '1' } } }] };
    const reads = await Promise.all(
      [{ protocol: SqsJsonProtocol }, {}].map(async (config) => {
        const { client } = capturingClient({ status: 200, body: JSON.stringify(received) }, config);
        const { $metadata: _, ...output } = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }));
        return output;
      }),
    );
    expect(reads[0]).toEqual(reads[1]);
    expect(reads[0]!.Messages![0]!.Body).toBe(TRICKY);
  });
});

describe('the SQS client against the emulator (or SQS_ENDPOINT)', () => {
  let sqs: TestSqs;
  let client: SQSClient;
  beforeAll(async () => {
    sqs = await startTestSqs();
    const env = sqs.serviceEnv();
    client = createSqsClient({
      endpoint: sqs.endpoint,
      region: sqs.region,
      ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } } : {}),
    });
  });
  afterAll(async () => {
    client?.destroy();
    await sqs?.stop();
  });

  it('a body of every awkward character SQS accepts and 200 KB travels unchanged, checked against the MD5 SQS computes', async () => {
    const name = `${sqs.prefix}codec${sqs.fifo ? '.fifo' : ''}`;
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, ...(sqs.fifo ? { Attributes: { FifoQueue: 'true' } } : {}) }));
    // What SQS accepts in a body of the awkward text: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD (SQS also
    // takes characters beyond U+FFFF; the emulator does not).
    const text = TRICKY.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu, '') + 'A'.repeat(200_000);
    expect(text).toContain('\u2028');
    const fifo = sqs.fifo ? { MessageGroupId: 'g', MessageDeduplicationId: 'd1' } : {};
    const sent = await client.send(new SendMessageBatchCommand({ QueueUrl, Entries: [{ Id: '0', MessageBody: text, ...fifo }] }));
    expect(sent.Failed ?? []).toEqual([]);
    const got = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 5 }));
    expect(got.Messages?.[0]?.Body).toBe(text);
    await client.send(new DeleteQueueCommand({ QueueUrl }));
  });
});
