import type { SmsQueueJob } from './redactionJob.ts';

/** How a terminal message is cleaned: blank the body, or blank it then delete the message. */
export type RedactionMode = 'redact' | 'delete';

/** Everything the SMS part of the app needs; the app's config.ts maps environment variables onto it. */
export interface SmsConfig {
  /** SignalWire project id (SIGNALWIRE_PROJECT_ID); also the AccountSid in API paths. */
  projectId: string;
  /** SignalWire API token (SIGNALWIRE_API_TOKEN): authenticates REST calls, never signs callbacks. */
  apiToken: string;
  /** Space URL (SIGNALWIRE_SPACE_URL): `https://example.signalwire.com`, or a bare host. */
  spaceUrl: string;
  /** Signing Key (SIGNALWIRE_SIGNING_KEY) that signs status callbacks. */
  signingKey: string;
  /** Sending number in E.164 (SIGNALWIRE_FROM_NUMBER). */
  fromNumber: string;
  /** Public base URL of the app (PUBLIC_BASE_URL): the status callback is built on it and signatures checked against it. */
  publicBaseUrl: string;
  /** Basic Auth the webhook requires (SIGNALWIRE_WEBHOOK_USER / SIGNALWIRE_WEBHOOK_PASSWORD), when set. */
  webhookBasicAuth?: { user: string; password: string };
  /** REDACTION_MODE: `redact` (default) or `delete`. */
  redactionMode: RedactionMode;
  /** REDACTION_SENT_GRACE_SECONDS: a message still `sent` this long after sending counts as final. */
  sentGraceSeconds: number;
  /** REDACTION_FALLBACK_DELAY_SECONDS: delay of the job enqueued at send time (at most 900, SQS's limit). */
  fallbackDelaySeconds: number;
  /** REDACTION_WINDOW_SECONDS: a message not redacted this long after sending goes to the DLQ. */
  redactionWindowSeconds: number;
  /** Key of the HMAC that hashes numbers and sids for logs and audit (the app's hashing key). */
  hmacKey: string;
  /** SIGNALWIRE_ALLOW_INSECURE: allow http:// media URLs and an http:// space URL on loopback (development only). */
  allowInsecure?: boolean;
  /** Smallest re-delay in seconds of a job whose message is still in progress (default 5). */
  retryBaseSeconds?: number;
}

/** Puts a job on the `app-sms-redaction` queue with an SQS delay (0..900 s); the app wires it to the transport producer. */
export type EnqueueRedaction = (job: SmsQueueJob, delaySeconds: number) => Promise<void>;

/** A received queue message as the transport consumer hands it to a handler (only the body is read here). */
export interface RedactionQueueMessage {
  /** The job JSON (`body` in the transport's ReceivedMessage). */
  body?: string;
  /** The raw SQS field name, accepted too. */
  Body?: string;
}

/** A consumer handler's verdict: the transport's own type (docs/architecture.md, Transport). */
export type { HandlerResult } from '../../core/transport/consumer.ts';

/** Counters the SMS code increments; `createSmsMetrics` backs them with prom-client. */
export interface SmsMetrics {
  /** Counts one event. */
  inc(name: SmsMetricName, labels?: Record<string, string>): void;
}

/** Names of the SMS counters. */
export type SmsMetricName =
  | 'sms_sent_total'
  | 'sms_redacted_total'
  | 'sms_redaction_retries_total'
  | 'sms_redaction_dead_lettered_total'
  | 'sms_webhook_rejected_total'
  | 'sms_fallback_enqueue_failed_total';

/** Metrics that count nothing. */
export const nullSmsMetrics: SmsMetrics = { inc: () => {} };
