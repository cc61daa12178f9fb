import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { DescribeTableCommand, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoClient } from '../../services/core/state/table.ts';
import { run } from '../../services/cli/queues.ts';
import { resolveQueues } from '../../services/core/transport/queues.ts';
import { deleteQueues } from '../core/transport/helpers.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';

let sqs: TestSqs;
beforeAll(async () => {
  sqs = await startTestSqs();
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
});

function io(env: Record<string, string | undefined>): { env: Record<string, string | undefined>; out: (l: string) => void; err: (l: string) => void; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { env, out: (l) => void stdout.push(l), err: (l) => void stderr.push(l), stdout, stderr };
}

// Against a real endpoint the credentials come from the environment; the emulator takes the CLI's dummy ones.
const baseEnv = (): Record<string, string | undefined> => ({ ...process.env, SQS_ENDPOINT: sqs.endpoint, DYNAMODB_ENDPOINT: sqs.dynamodbEndpoint, AWS_REGION: sqs.region });

describe('care-relay queues', () => {
  it('init creates every queue, idempotently, and prints their URLs', async () => {
    for (let i = 0; i < 2; i++) {
      const t = io({ ...baseEnv(), QUEUE_PREFIX: sqs.prefix });
      expect(await run(['init', '--max-receive-count', '3'], t)).toBe(0);
      expect(t.stderr).toEqual([]);
      const text = t.stdout.join('\n');
      for (const q of ['interface-to-app', 'app-to-interface', 'app-sms-redaction', 'interface-partner-callbacks']) {
        expect(text).toContain(`/${sqs.prefix}${q}\n`);
        expect(text).toContain(`/${sqs.prefix}${q}-dlq`);
        expect(text).toContain(`/${sqs.prefix}${q}-quarantine`);
      }
    }
    const resolved = await resolveQueues(sqs.client, { prefix: sqs.prefix });
    expect(Object.keys(resolved)).toHaveLength(4);
  });

  it('init creates the alerts topic, idempotently, and prints the ARN to give the services', async () => {
    const arns: string[] = [];
    for (let i = 0; i < 2; i++) {
      const t = io({ ...baseEnv(), QUEUE_PREFIX: sqs.prefix });
      expect(await run(['init', '--max-receive-count', '3'], t)).toBe(0);
      const line = t.stdout.find((l) => l.startsWith('alerts topic'));
      arns.push(/(arn:\S+:sns:\S+)/.exec(line ?? '')?.[1] ?? 'none');
    }
    expect(arns[0]).toMatch(new RegExp(`:${sqs.prefix}care-relay-alerts$`));
    expect(arns[1]).toBe(arns[0]);
  });

  it('init also creates each service\'s state table, idempotently, with TTL where the endpoint has it', async () => {
    const prefix = `${sqs.prefix}s-`;
    const dynamo = createDynamoClient({ endpoint: sqs.dynamodbEndpoint, region: sqs.region, ...(process.env.DYNAMODB_ENDPOINT ? {} : { credentials: { accessKeyId: 't', secretAccessKey: 't' } }) });
    try {
      for (let i = 0; i < 2; i++) {
        const t = io({ ...baseEnv(), QUEUE_PREFIX: prefix });
        expect(await run(['init'], t)).toBe(0);
        const text = t.stdout.join('\n');
        for (const service of ['interface', 'app']) expect(text).toContain(`  table       ${prefix}${service}-state${i === 0 ? ' (created)' : ''}\n`);
      }
      for (const service of ['interface', 'app']) {
        const table = await dynamo.send(new DescribeTableCommand({ TableName: `${prefix}${service}-state` }));
        expect(table.Table?.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
        if (process.env.DYNAMODB_ENDPOINT) {
          const ttl = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: `${prefix}${service}-state` }));
          expect(ttl.TimeToLiveDescription?.AttributeName).toBe('ttl');
        }
      }
    } finally {
      dynamo.destroy();
    }
  });

  it('--prefix wins over QUEUE_PREFIX and --fifo creates .fifo queues', async () => {
    const t = io({ ...baseEnv(), QUEUE_PREFIX: 'ignored-' });
    expect(await run(['init', '--prefix', `${sqs.prefix}f-`, '--fifo'], t)).toBe(0);
    expect(t.stdout.join('\n')).toContain(`/${sqs.prefix}f-interface-to-app.fifo`);
    await expect(resolveQueues(sqs.client, { prefix: `${sqs.prefix}f-`, fifo: true })).resolves.toBeDefined();
  });

  it('QUEUE_FIFO=true means FIFO queues, as the services read it', async () => {
    const t = io({ SQS_ENDPOINT: 'http://127.0.0.1:9', QUEUE_FIFO: 'true' });
    expect(await run(['list', '--prefix', 'p-'], t)).toBe(0);
    const defs = JSON.parse(t.stdout.join('\n')) as { name: string }[];
    expect(defs.every((d) => d.name.endsWith('.fifo'))).toBe(true);
  });

  it('list prints the definitions as JSON without calling SQS', async () => {
    const t = io({ SQS_ENDPOINT: 'http://127.0.0.1:9' });
    expect(await run(['list', '--prefix', 'p-'], t)).toBe(0);
    const defs = JSON.parse(t.stdout.join('\n')) as { name: string }[];
    expect(defs).toHaveLength(12);
    expect(defs[2]!.name).toBe('p-interface-to-app');
  });

  it('rejects bad usage with exit code 2 and a message naming the problem', async () => {
    const bad = io({});
    expect(await run(['init', '--max-receive-count', 'many'], bad)).toBe(2);
    expect(bad.stderr.join('\n')).toContain('--max-receive-count: expected an integer from 1 to 1000, got "many"');
    const none = io({});
    expect(await run([], none)).toBe(2);
    expect(none.stderr.join('\n')).toContain('missing subcommand');
    const help = io({});
    expect(await run(['--help'], help)).toBe(0);
    expect(help.stdout.join('\n')).toContain('care-relay queues init');
  });

  it('fails with exit code 1 and one clear line when SQS cannot be reached', async () => {
    const t = io({ SQS_ENDPOINT: 'http://127.0.0.1:9', QUEUE_PREFIX: 'x-' });
    expect(await run(['init'], t)).toBe(1);
    // As every command: one line, code and message.
    expect(t.stderr.join('\n')).toMatch(/^care-relay queues: CR_TRANSPORT_QUEUE_SETUP_FAILED queue "x-interface-to-app-dlq": CreateQueue failed \(\w+\)$/);
  });

  it('the main queues keep messages for MESSAGE_MAX_AGE_SECONDS, as the services read it (it was always 4 days)', async () => {
    const retention = async (env: Record<string, string>): Promise<Array<[string, string | undefined]>> => {
      const t = io(env);
      expect(await run(['list'], t)).toBe(0);
      return (JSON.parse(t.stdout.join('\n')) as Array<{ role: string; attributes: Record<string, string> }>).map((d) => [d.role, d.attributes.MessageRetentionPeriod]);
    };
    const tenDays = await retention({ MESSAGE_MAX_AGE_SECONDS: '864000' });
    expect(tenDays.filter(([role]) => role === 'main').map(([, r]) => r)).toEqual(['864000', '864000', '864000', '864000']);
    expect(tenDays.filter(([role]) => role !== 'main').every(([, r]) => r === '1209600')).toBe(true);
    expect((await retention({})).filter(([role]) => role === 'main').every(([, r]) => r === '345600')).toBe(true);

    const prefix = `${sqs.prefix}ret-`;
    const t = io({ ...baseEnv(), QUEUE_PREFIX: prefix, MESSAGE_MAX_AGE_SECONDS: '86400' });
    expect(await run(['init'], t)).toBe(0);
    const { QueueUrl } = await sqs.client.send(new GetQueueUrlCommand({ QueueName: `${prefix}interface-to-app` }));
    const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['MessageRetentionPeriod'] }));
    expect(Attributes?.MessageRetentionPeriod).toBe('86400');

    for (const bad of ['30', '2000000', 'four days']) {
      const b = io({ MESSAGE_MAX_AGE_SECONDS: bad });
      expect(await run(['list'], b), bad).toBe(1);
      expect(b.stderr.join('\n')).toBe(`care-relay queues: CR_CONFIG_INVALID MESSAGE_MAX_AGE_SECONDS: expected an integer from 60 to 1209600, got "${bad}"`);
    }
  });

  it('--kms-key (or QUEUE_KMS_KEY_ID) sets SSE-KMS on every queue, DLQs and quarantine queues included', async () => {
    const listed = io({ QUEUE_KMS_KEY_ID: 'alias/care-relay' });
    expect(await run(['list'], listed)).toBe(0);
    const defs = JSON.parse(listed.stdout.join('\n')) as Array<{ name: string; attributes: Record<string, string> }>;
    expect(defs).toHaveLength(12);
    for (const d of defs) expect(d.attributes.KmsMasterKeyId, d.name).toBe('alias/care-relay');

    const prefix = `${sqs.prefix}kms-`;
    const t = io({ ...baseEnv(), QUEUE_PREFIX: prefix });
    expect(await run(['init', '--kms-key', 'alias/care-relay'], t)).toBe(0);
    for (const name of [`${prefix}interface-to-app`, `${prefix}interface-to-app-dlq`, `${prefix}interface-to-app-quarantine`]) {
      const { QueueUrl } = await sqs.client.send(new GetQueueUrlCommand({ QueueName: name }));
      const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['KmsMasterKeyId'] }));
      expect(Attributes?.KmsMasterKeyId, name).toBe('alias/care-relay');
    }
    const bad = io({});
    expect(await run(['list', '--kms-key', 'alias/x"; rm -rf /'], bad)).toBe(2);
    expect(bad.stderr.join('\n')).toContain('--kms-key: expected a KMS key id');
  });
});
