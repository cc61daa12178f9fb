import { RelayError } from '../errors/relayError.ts';

/** Stable codes of the audit trail; none is public over HTTP. */
export const AUDIT_ERROR_CODES = {
  /** The existing file's last line is not a valid chained entry, so the chain cannot be continued. */
  TAIL_BROKEN: 'CR_AUDIT_TAIL_BROKEN',
  /** Writing or syncing a line failed; the trail refuses further records (fail closed). */
  WRITE_FAILED: 'CR_AUDIT_WRITE_FAILED',
  /** record() was called after close(). */
  CLOSED: 'CR_AUDIT_CLOSED',
  /** The audit file could not be opened or read. */
  UNREADABLE: 'CR_AUDIT_UNREADABLE',
} as const;

/** Raised by the audit trail; the message names the file and never contains event contents. */
export class AuditError extends RelayError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'AuditError';
  }
}
