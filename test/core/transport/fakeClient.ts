import type { SQSClient } from '@aws-sdk/client-sqs';

/** One SQS call a fake client saw: the command name without `Command`, and its input. */
export interface Call {
  name: string;
  input: Record<string, unknown>;
}

/** A fake SQS client for unit tests: `answer` decides each command's reply; every call is recorded. */
export function fakeClient(answer: (call: Call, signal?: AbortSignal) => Promise<unknown>): { client: SQSClient; calls: Call[] } {
  const calls: Call[] = [];
  const client = {
    send: (command: { constructor: { name: string }; input: Record<string, unknown> }, opts?: { abortSignal?: AbortSignal }) => {
      const call = { name: command.constructor.name.replace(/Command$/, ''), input: command.input };
      calls.push(call);
      return answer(call, opts?.abortSignal);
    },
  } as unknown as SQSClient;
  return { client, calls };
}

/** A reply that never comes, until the request is aborted (a long poll). */
export const hang = (signal?: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))));
