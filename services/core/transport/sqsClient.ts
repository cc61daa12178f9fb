import { SQSClient } from '@aws-sdk/client-sqs';

/** Options for {@link createSqsClient}. */
export interface SqsClientOptions {
  /** Endpoint URL (LocalStack, the emulator); omit for AWS, which resolves it from the region. */
  endpoint?: string;
  /** AWS region, e.g. `us-east-1`. */
  region: string;
  /** Static credentials; omit to use the default AWS credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per call (the SDK's own retry); default 3. */
  maxAttempts?: number;
  /** Milliseconds to wait for a TCP connection before failing; default 5000. */
  connectionTimeoutMs?: number;
}

/** An SQS client for the given endpoint and region; the queue URL never overrides the configured endpoint. */
export function createSqsClient(options: SqsClientOptions): SQSClient {
  return new SQSClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5000 },
  });
}
