import { CreateTopicCommand, type SNSClient } from '@aws-sdk/client-sns';

/** The alerts topic's name for a queue prefix: `<prefix>care-relay-alerts`. */
export function alertTopicName(prefix: string): string {
  return `${prefix}care-relay-alerts`;
}

/** Creates the alerts topic, or finds it (CreateTopic is idempotent); resolves with its ARN. */
export async function ensureAlertTopic(sns: SNSClient, name: string): Promise<string> {
  const res = await sns.send(new CreateTopicCommand({ Name: name }));
  if (!res.TopicArn) throw new Error(`SNS CreateTopic for ${name} returned no TopicArn`);
  return res.TopicArn;
}
