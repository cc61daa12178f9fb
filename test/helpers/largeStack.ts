// Both services on real sockets (large bodies are streamed both ways, never built whole by
// inject()), with the emulator's S3 bucket configured as LARGE_OBJECT_BUCKET.
import type { AddressInfo } from 'node:net';
import { testBucket } from './largeDocs.ts';
import { startStack, type TestStack } from './stack.ts';
import { suiteFixture } from './suiteFixture.ts';
import { startTestSqs, type TestSqs } from './sqs.ts';

/** What {@link startLargeStack} started. */
export interface LargeStack {
  sqs: TestSqs;
  bucket: Awaited<ReturnType<typeof testBucket>>;
  stack: TestStack;
  /** http://127.0.0.1:<port> of each service. */
  ifaceUrl: string;
  appUrl: string;
  /** Stops the services, the bucket and the emulator. */
  stop(): Promise<void>;
}

/** Starts the emulator, a bucket and both services listening on loopback (5-minute request timeout: 100 MiB bodies). */
export async function startLargeStack(): Promise<LargeStack> {
  const sqs = await startTestSqs();
  const bucket = await testBucket(sqs);
  const slow = { HTTP_REQUEST_TIMEOUT_MS: '300000' };
  const stack = await startStack({ sqs, ifaceEnv: { ...bucket.env, ...slow }, appEnv: { ...bucket.env, ...slow } });
  await stack.iface.server.listen({ port: 0, host: '127.0.0.1' });
  await stack.app.server.listen({ port: 0, host: '127.0.0.1' });
  const url = (server: TestStack['iface']['server']) => `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  return {
    sqs,
    bucket,
    stack,
    ifaceUrl: url(stack.iface.server),
    appUrl: url(stack.app.server),
    async stop() {
      await stack.stop();
      bucket.stop();
      await sqs.stop();
    },
  };
}

/** For a suite: the large-document stack, started before its tests and stopped after them (read it inside tests). */
export function useLargeStack(): Omit<LargeStack, 'stop'> {
  return suiteFixture('the large-document stack', startLargeStack, (large) => large.stop(), 60_000);
}
