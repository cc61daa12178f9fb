import { defineErrors, type ErrorCode } from '../../core/errors/defineErrors.ts';

/**
 * Codes of HL7 v2 over MLLP (docs/errors.md, "HL7 v2 over MLLP"): intake refusals answered
 * with AE/AR and an ERR segment, delivery outcomes sent as `cr-reason`. `<code>` and `<CODE>`
 * name the families filled in at run time (the EMR's ACK code, the system error).
 */
export const MLLP_ERRORS = defineErrors({
  CR_MLLP_FRAME_INVALID: { title: 'MLLP frame invalid', description: 'Intake: bytes outside a <VT>…<FS><CR> frame, <FS> not followed by <CR>, or a start block inside a frame; messages complete before it are answered first.' },
  CR_MLLP_FRAME_TOO_LARGE: { title: 'MLLP frame too large', description: 'Intake: a frame grew past MLLP_INTAKE_MAX_FRAME_BYTES before it ended.' },
  CR_MLLP_MESSAGE_MALFORMED: { title: 'MLLP message malformed', description: 'Intake: no MSH segment, invalid encoding characters (MSH-1/MSH-2), no MSH-9 or MSH-10, or bytes invalid in the character set MSH-18 names.' },
  CR_MLLP_CHARSET_UNSUPPORTED: { title: 'MLLP charset unsupported', description: 'Intake: MSH-18 names a character set the relay does not carry (supported: empty/ASCII, UNICODE UTF-8, 8859/1–8859/16, GB 18030-2000, KS X 1001, BIG-5).' },
  CR_MLLP_PARTNER_UNKNOWN: { title: 'MLLP partner unknown', description: 'Intake: no partner in the partners file matches the client certificate fingerprint (TLS) or the source address plus MSH-4 (plain TCP); the connection is then closed, and the failure counted by the failed-authentication limiter.' },
  CR_MLLP_CONTENT_NOT_ALLOWED: { title: 'MLLP content not allowed', description: 'Intake: the partner\'s contentTypes do not include application/hl7-v2.' },
  CR_MLLP_RATE_LIMITED: { title: 'MLLP rate limited', description: 'Intake: the partner sent more than its rateLimitPerMinute.' },
  CR_MLLP_UNAVAILABLE: { title: 'MLLP unavailable', description: 'Intake: the message could not be relayed now (SQS or the state table unreachable, emergency mode on, or its audit lines not written after SQS took it); resend with the same MSH-10.' },
  CR_MLLP_MESSAGE_TOO_LARGE: { title: 'MLLP message too large', description: 'Intake: the sealed message would not fit one SQS message. Delivery: a chart update that came through S3 (larger than one SQS message) is not sent over MLLP; dead-lettered at once.' },
  CR_MLLP_CONTROL_ID_REUSED: { title: 'MLLP control ID reused', description: 'Intake: this partner already sent this MSH-10 (within the queue retention, to any instance) with a different message.' },
  'CR_MLLP_ACK_<code>': { title: 'EMR acknowledgement code', description: 'Delivery: the EMR answered this acknowledgement code (AE/CE retried, AR/CR dead-lettered).' },
  CR_MLLP_ACK_MISMATCH: { title: 'MLLP ack mismatch', description: 'Delivery: the ACK\'s MSA-2 is not the MSH-10 just sent (an AR/CR with an empty MSA-2 is a rejection instead; a repeated ACK for a message already answered on the connection is discarded).' },
  CR_MLLP_ACK_MALFORMED: { title: 'MLLP ack malformed', description: 'Delivery: the EMR\'s answer is not a readable HL7 acknowledgement (framing, MSH or MSA-1).' },
  CR_MLLP_ACK_TIMEOUT: { title: 'MLLP ack timeout', description: 'Delivery: no ACK within EMR_MLLP_ACK_TIMEOUT_MS.' },
  CR_MLLP_CLOSED: { title: 'MLLP closed', description: 'Delivery: the EMR closed the connection before it acknowledged.' },
  'CR_MLLP_UNREACHABLE_<CODE>': { title: 'MLLP destination unreachable', description: 'Delivery: the MLLP connection could not be opened; <CODE> is the system or TLS error.' },
} as const);

/** One of the {@link MLLP_ERRORS} codes (or families). */
export type MllpErrorCode = ErrorCode<typeof MLLP_ERRORS>;
