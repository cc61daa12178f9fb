import { defineErrors, type ErrorCode } from '../../core/errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../../core/errors/relayError.ts';

/**
 * Codes of the partner status callbacks (docs/errors.md, "Partner status callbacks"): the
 * configuration error that stops a start or a reload, and the retry, stop and dead-letter
 * reasons of a delivery (sent as `cr-reason`, audited, counted). `<CODE>` and `<status>` name
 * the families filled in at run time.
 */
export const CALLBACK_REASONS = defineErrors({
  CR_CALLBACK_CONFIG_INVALID: { title: 'Partner callback invalid', description: 'A partner\'s callback in the partners file is refused (URL scheme, host, credentials, or its secret file); the service does not start and a reload changes nothing.' },
  CR_CALLBACK_TIMEOUT: { title: 'Callback timeout', description: 'Retry reason: the partner\'s callback URL did not answer within PARTNER_CALLBACK_TIMEOUT_MS.' },
  'CR_CALLBACK_UNREACHABLE_<CODE>': { title: 'Callback unreachable', description: 'Retry reason: the callback URL could not be reached (DNS, connection, TLS); <CODE> is the system or TLS error.' },
  CR_CALLBACK_ADDRESS_REFUSED: { title: 'Callback address refused', description: 'Retry reason: the callback host resolves only to loopback, private, link-local or reserved addresses (the cloud metadata service among them), and PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS is not set; no connection was made.' },
  'CR_CALLBACK_HTTP_<status>': { title: 'Callback answered an error', description: 'The callback URL answered this non-2xx status: 410 stops the retries of this callback, any other (redirects included, never followed) is retried.' },
  CR_CALLBACK_ATTEMPTS_EXHAUSTED: { title: 'Callback attempts exhausted', description: 'Dead-letter reason: PARTNER_CALLBACK_MAX_ATTEMPTS attempts failed; the job is copied to the callbacks DLQ and audited.' },
  CR_CALLBACK_IN_PROGRESS: { title: 'Callback in progress', description: 'Retry reason: another instance holds this callback\'s attempt (its lease in the state table); the job waits for the lease.' },
  CR_CALLBACK_NOT_CONFIGURED: { title: 'Callback no longer configured', description: 'A queued callback whose partner no longer has a callback (partners file reloaded); it is dropped and audited.' },
  CR_CALLBACK_JOB_INVALID: { title: 'Callback job invalid', description: 'A message on the callbacks queue that is not a valid callback job; quarantined.' },
  CR_CALLBACK_ENQUEUE_FAILED: { title: 'Callback not enqueued', description: 'A status change could not be put on the callbacks queue (SQS refused it after retries); logged, counted and audited, intake is not affected.' },
} as const);

/** One of the {@link CALLBACK_REASONS} codes (or families). */
export type CallbackReasonCode = ErrorCode<typeof CALLBACK_REASONS>;

/** A partner callback refused at start or reload; the message names the partner and the field, never the secret. */
export class CallbackConfigError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super('CR_CALLBACK_CONFIG_INVALID', message, fromCatalogue(CALLBACK_REASONS.CR_CALLBACK_CONFIG_INVALID, { cause }));
    this.name = 'CallbackConfigError';
  }
}
