import { RelayError, type RelayErrorOptions } from '../../core/errors/relayError.ts';

/** Codes of the SMS area (documented in docs/errors.md, "SMS"). */
export const SMS_ERRORS = {
  /** `to` is not an E.164 number. */
  INVALID_TO: 'CR_SMS_INVALID_TO',
  /** Body empty without media, or longer than 1600 characters. */
  INVALID_BODY: 'CR_SMS_INVALID_BODY',
  /** A media URL is not https (or http when allowed), or too many. */
  INVALID_MEDIA_URL: 'CR_SMS_INVALID_MEDIA_URL',
  /** SignalWire refused the message (4xx). */
  PROVIDER_REJECTED: 'CR_SMS_PROVIDER_REJECTED',
  /** SignalWire unavailable or rate-limiting after retries. */
  PROVIDER_UNAVAILABLE: 'CR_SMS_PROVIDER_UNAVAILABLE',
  /** Status callback signature missing or wrong. */
  WEBHOOK_SIGNATURE: 'CR_SMS_WEBHOOK_SIGNATURE',
  /** Status callback Basic Auth missing or wrong. */
  WEBHOOK_AUTH: 'CR_SMS_WEBHOOK_AUTH',
  /** Status callback without a valid MessageSid / MessageStatus. */
  WEBHOOK_INVALID: 'CR_SMS_WEBHOOK_INVALID',
  /** The redaction job could not be enqueued (the callback will be retried). */
  ENQUEUE_FAILED: 'CR_SMS_ENQUEUE_FAILED',
  /** A redaction job on the queue is not valid JSON of version 1 (internal). */
  JOB_INVALID: 'CR_SMS_JOB_INVALID',
  /** Media still listed after deletion (internal, retried). */
  MEDIA_REMAINS: 'CR_SMS_MEDIA_REMAINS',
} as const;

/** An error of the SMS area. */
export class SmsError extends RelayError {
  constructor(code: string, message: string, options: RelayErrorOptions = {}) {
    super(code, message, options);
    this.name = 'SmsError';
  }
}
