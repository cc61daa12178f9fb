import { defineErrors, type ErrorCode } from '../../core/errors/defineErrors.ts';
import { fromCatalogue, RelayError, type RelayErrorOptions } from '../../core/errors/relayError.ts';

/** Codes of the SMS area, with their HTTP status (docs/errors.md, "SMS"). */
export const SMS_ERRORS = defineErrors({
  CR_SMS_INVALID_TO: { status: 400, title: 'Bad Request', description: '`to` is not an E.164 number.' },
  CR_SMS_INVALID_BODY: { status: 400, title: 'Bad Request', description: 'Body empty without media, or longer than 1600 characters.' },
  CR_SMS_INVALID_MEDIA_URL: { status: 400, title: 'Bad Request', description: 'A media URL is not https (or http when allowed), or too many.' },
  CR_SMS_PROVIDER_REJECTED: { status: 502, title: 'Bad Gateway', description: 'SignalWire refused the message (4xx).' },
  CR_SMS_PROVIDER_UNAVAILABLE: { status: 503, title: 'Service Unavailable', description: 'SignalWire unavailable or rate-limiting after retries.' },
  CR_SMS_SEND_IN_PROGRESS: { status: 409, title: 'Conflict', description: 'Another request with this Idempotency-Key is sending the message (Retry-After).' },
  CR_SMS_REDACTION_QUEUE_UNAVAILABLE: { status: 503, title: 'Service Unavailable', description: 'The send\'s redaction job could not be enqueued before the create call: the message was not sent (Retry-After).' },
  CR_SMS_OUTCOME_UNKNOWN: { status: 409, title: 'Conflict', description: 'A request with this Idempotency-Key stopped while SignalWire may have taken the message; not sent again under this key.' },
  CR_SMS_WEBHOOK_SIGNATURE: { status: 403, title: 'Forbidden', description: 'Status callback signature missing or wrong.' },
  CR_SMS_WEBHOOK_AUTH: { status: 401, title: 'Unauthorized', description: 'Status callback Basic Auth missing (401) or wrong (403).' },
  CR_SMS_WEBHOOK_INVALID: { status: 400, title: 'Bad Request', description: 'Status callback without a valid MessageSid / MessageStatus.' },
  CR_SMS_ENQUEUE_FAILED: { status: 503, title: 'Service Unavailable', description: 'The redaction job could not be enqueued (the callback will be retried).' },
  CR_SMS_JOB_INVALID: { title: 'Invalid redaction job', description: 'A redaction job on the queue is not valid JSON of version 1 (quarantined).' },
  CR_SMS_MEDIA_REMAINS: { title: 'Media remains', description: 'Media still listed after deletion (retried).' },
} as const);

/** One of the {@link SMS_ERRORS} codes. */
export type SmsErrorCode = ErrorCode<typeof SMS_ERRORS>;

/** An error of the SMS area: status and title from {@link SMS_ERRORS}; `status` only for CR_SMS_WEBHOOK_AUTH's 403. */
export class SmsError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: SmsErrorCode;

  constructor(code: SmsErrorCode, message: string, options: RelayErrorOptions = {}) {
    super(code, message, fromCatalogue(SMS_ERRORS[code], options));
    this.name = 'SmsError';
    this.code = code;
  }
}
