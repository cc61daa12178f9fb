import { defineErrors, type ErrorCode } from '../../core/errors/defineErrors.ts';

/**
 * Retry and dead-letter reasons of EMR delivery (docs/errors.md, "Relay"); never thrown,
 * sent as `cr-reason`. `<CODE>` and `<status>` name the families the delivery client fills in.
 */
export const EMR_REASONS = defineErrors({
  CR_EMR_TIMEOUT: { title: 'EMR timeout', description: 'Retry reason: the EMR endpoint did not answer within EMR_TIMEOUT_MS.' },
  'CR_EMR_UNREACHABLE_<CODE>': { title: 'EMR unreachable', description: 'Retry reason: the EMR endpoint could not be reached; <CODE> is the system error.' },
  'CR_EMR_HTTP_<status>': { title: 'EMR answered an error', description: 'The EMR answered this non-2xx status: 408, 429 and 5xx are retried, any other is dead-lettered.' },
} as const);

/** One of the {@link EMR_REASONS} codes (or families). */
export type EmrReasonCode = ErrorCode<typeof EMR_REASONS>;
