import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import type { TestSqs } from './sqs.ts';

/** One notification as an SNS subscriber reads it (the JSON the service published). */
export interface ReadNotification {
  service: string;
  alert: string;
  state: 'started' | 'reminder' | 'cleared';
  severity: string;
  subject: string;
  facts: Record<string, string | number>;
  runbook: string;
}

/** An SNS topic for alerts with an SQS queue subscribed to it, to read notifications back. */
export interface AlertTopic {
  /** The topic ARN to give the services (ALERT_SNS_TOPIC_ARN). */
  arn: string;
  /** Reads and deletes every notification delivered so far (short polls until empty); `client` replaces the one it was made with (an emulator restarted). */
  drain(client?: SQSClient): Promise<ReadNotification[]>;
  /** Closes the SNS client. */
  close(): void;
}

/** Creates a topic and a subscribed queue on the test endpoint (the emulator, LocalStack or AWS). */
export async function createAlertTopic(sqs: TestSqs, name = 'alerts'): Promise<AlertTopic> {
  const local = !process.env.SQS_ENDPOINT;
  const sns = new SNSClient({
    endpoint: sqs.endpoint,
    region: sqs.region,
    ...(local ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
  });
  const topic = await sns.send(new CreateTopicCommand({ Name: `${sqs.prefix}${name}` }));
  const queue = await sqs.client.send(new CreateQueueCommand({ QueueName: `${sqs.prefix}${name}-subscriber` }));
  const queueUrl = queue.QueueUrl!;
  const attrs = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  await sns.send(
    new SubscribeCommand({ TopicArn: topic.TopicArn!, Protocol: 'sqs', Endpoint: attrs.Attributes!.QueueArn!, Attributes: { RawMessageDelivery: 'true' } }),
  );
  return {
    arn: topic.TopicArn!,
    async drain(client = sqs.client) {
      const out: ReadNotification[] = [];
      for (;;) {
        const res = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        const messages = res.Messages ?? [];
        if (messages.length === 0) return out;
        for (const m of messages) out.push(JSON.parse(m.Body!) as ReadNotification);
        await client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    },
    close: () => sns.destroy(),
  };
}
