import type { StateTable } from '../../services/core/state/table.ts';
import { startProxy, type ProxiedRequest, type ProxyAnswer, type TestProxy } from './proxy.ts';
import { openTestStateTable, startTestSqs, type TestSqs } from './sqs.ts';
import { startStack, type TestStack } from './stack.ts';

/** The relay whose app reaches its state table through a proxy that may answer some calls itself. */
export interface AppStateProxyStack {
  sqs: TestSqs;
  proxy: TestProxy;
  stack: TestStack;
  /** The app's state table, read directly (not through the proxy). */
  table: StateTable;
  stop(): Promise<void>;
}

/** The DynamoDB operation of a proxied state-table call (`BatchWriteItem`, `UpdateItem`, …). */
export const dynamoOperation = (req: ProxiedRequest): string => String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';

/** A DynamoDB error answer as the service sends it (`type`: its `__type`, e.g. `com.amazonaws.dynamodb.v20120810#InternalServerError`). */
export function dynamoError(status: number, type: string, message: string): ProxyAnswer {
  return { status, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: JSON.stringify({ __type: type, message }) };
}

/** Starts the stack with the app's `DYNAMODB_ENDPOINT` behind a proxy shown every call (`see`, as in {@link startProxy}). */
export async function startAppStateProxyStack(see: (req: ProxiedRequest) => ProxyAnswer | undefined): Promise<AppStateProxyStack> {
  const sqs = await startTestSqs();
  const proxy = await startProxy(sqs.dynamodbEndpoint, see);
  const stack = await startStack({ sqs, appEnv: { DYNAMODB_ENDPOINT: proxy.url } });
  const table = openTestStateTable(sqs, 'app');
  return {
    sqs,
    proxy,
    stack,
    table,
    async stop() {
      await stack.stop();
      await table.close();
      await proxy.close();
      await sqs.stop();
    },
  };
}
