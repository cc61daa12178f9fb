// Child process of durableSqs.test.ts: on a fresh persisted emulator (plain fauxqs, or with
// the project's correction when argv[3] is "corrected"), sends one message, receives it,
// releases it (VisibilityTimeout 0) and receives again. Prints one JSON line with the result.
import { ChangeMessageVisibilityCommand, CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { startDurableSqs } from '../../services/devtools/durableSqs.ts';

const [dataDir, mode] = process.argv.slice(2) as [string, string];
const server = mode === 'corrected' ? await startDurableSqs({ port: 0, dataDir }) : await startFauxqs({ port: 0, host: '127.0.0.1', logger: false, dataDir });
const client = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'probe' }));
await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'probe' }));
const first = await client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
let releaseError: string | null = null;
try {
  await client.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: first.Messages![0]!.ReceiptHandle, VisibilityTimeout: 0 }));
} catch (err) {
  releaseError = (err as Error).name;
}
const again = await client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
console.log(JSON.stringify({ releaseError, receivedAgain: again.Messages?.length ?? 0, receiveCount: again.Messages?.[0]?.Attributes?.ApproximateReceiveCount ?? null }));
client.destroy();
await server.stop();
