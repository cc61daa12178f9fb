// The queue operations' dependencies as the CLI builds them: an SQS client and the resolved queues.
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { OpsDeps } from '../core/ops/index.ts';
import { isRelayError } from '../core/errors/relayError.ts';
import { LOGICAL_QUEUES, resolveQueues, type LogicalQueue, type ResolvedQueue } from '../core/transport/queues.ts';
import { createSqsClient } from '../core/transport/sqsClient.ts';
import type { OpsConfig } from './config.ts';
import { CliError } from './errors.ts';

/** The queues each service consumes (and so owns the DLQ and quarantine queue of). */
export const CONSUMED_QUEUES: Readonly<Record<'interface' | 'app', readonly LogicalQueue[]>> = {
  interface: ['app-to-interface', 'interface-partner-callbacks'],
  app: ['interface-to-app', 'app-sms-redaction'],
};

/** Queues that exist only when a feature is configured (SMS, partner callbacks): absent is not an error for status. */
const OPTIONAL_QUEUES: readonly LogicalQueue[] = ['app-sms-redaction', 'interface-partner-callbacks'];

/** Checks a QUEUE argument: a logical queue name. */
export function logicalQueue(name: string): LogicalQueue {
  if (!(LOGICAL_QUEUES as readonly string[]).includes(name)) {
    throw new CliError('CR_CLI_USAGE', `QUEUE: expected one of ${LOGICAL_QUEUES.join(', ')} (the logical name, without QUEUE_PREFIX), got "${name.slice(0, 80)}"`);
  }
  return name as LogicalQueue;
}

/** An SQS client for the configured endpoint. */
export function sqsClientFor(cfg: OpsConfig): SQSClient {
  return createSqsClient(cfg.aws(cfg.env.SQS_ENDPOINT));
}

/** Resolves the given queues (GetQueueUrl); optional ones that do not exist are left out. */
export async function resolveFor(client: SQSClient, cfg: OpsConfig, queues: readonly LogicalQueue[], optional = false): Promise<OpsDeps> {
  const out: Record<string, ResolvedQueue> = {};
  for (const logical of queues) {
    try {
      Object.assign(out, await resolveQueues(client, { prefix: cfg.env.QUEUE_PREFIX, fifo: cfg.env.QUEUE_FIFO, queues: [logical] }));
    } catch (err) {
      if (optional && OPTIONAL_QUEUES.includes(logical) && isRelayError(err, 'CR_TRANSPORT_QUEUE_MISSING')) continue;
      throw err;
    }
  }
  return { client, queues: out };
}
