import { randomUUID } from 'node:crypto';
import type { SQSClient } from '@aws-sdk/client-sqs';

/** SQS calls counted by operation (`SendMessageBatch`, `ReceiveMessage`, ...). */
export interface SqsCallCounter {
  /** Calls so far, by operation. */
  counts: Map<string, number>;
  /** Calls of one operation so far. */
  count(op: string): number;
  /** Starts counting from zero again. */
  reset(): void;
  /** Stops counting (removes the middleware). */
  stop(): void;
}

/** Counts the SQS calls of the given clients through their middleware stacks, until `stop()`. */
export function countSqsCalls(clients: readonly SQSClient[]): SqsCallCounter {
  const counts = new Map<string, number>();
  const name = `sqsCallCounter-${randomUUID()}`;
  for (const client of clients) {
    client.middlewareStack.add(
      (next, context) => (args) => {
        const op = context.commandName?.replace(/Command$/, '') ?? 'unknown';
        counts.set(op, (counts.get(op) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name },
    );
  }
  return {
    counts,
    count: (op) => counts.get(op) ?? 0,
    reset: () => counts.clear(),
    stop: () => {
      for (const client of clients) client.middlewareStack.remove(name);
    },
  };
}
