import { SQSClient } from '@aws-sdk/client-sqs';
import { AwsJson1_0Protocol, JsonCodec } from '@aws-sdk/core/protocols';
import { AwsSha256 } from '../runtime/awsSha256.ts';

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

/** The JSON settings the SDK's own JSON-RPC protocol gives its codec: epoch-seconds timestamps unless a member says otherwise, member names as they are. */
const JSON_SETTINGS = { timestampFormat: { useTrait: true, default: 7 as const }, jsonName: false };

/**
 * SQS's JSON protocol (awsJson1_0, the SDK's default for SQS) with request bodies written by the
 * SDK's `JsonCodec`, which builds the request as plain values and writes it with `JSON.stringify`.
 * The default codec (`JsonCodec2`) writes every string one UTF-16 unit at a time in JavaScript into a
 * buffer three times the string's length; for an armored message body that was a tenth of a 4 KiB
 * SendMessageBatch call's CPU and half of a 64 KiB one's (docs/benchmarks.md, "SQS bodies written by
 * JSON.stringify"). The bytes sent are the same (test/core/transport/sqsClient.test.ts compares them
 * for every SQS operation the services call); only how they are produced differs. The SDK keeps
 * everything else: namespace, target, error classes, `x-amzn-query-mode`.
 */
export class SqsJsonProtocol extends AwsJson1_0Protocol {
  constructor(settings: ConstructorParameters<typeof AwsJson1_0Protocol>[0]) {
    super({ ...settings, jsonCodec: new JsonCodec(JSON_SETTINGS) });
  }
}

/** An SQS client for the given endpoint and region; the queue URL never overrides the configured endpoint. */
export function createSqsClient(options: SqsClientOptions): SQSClient {
  return new SQSClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5000 },
    // A constructor: the client builds it with its own protocol settings for SQS.
    protocol: SqsJsonProtocol,
    // Request signing with each HMAC key made once (runtime/awsSha256.ts).
    sha256: AwsSha256,
  });
}
