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
  /** At start, the trail does not verify against its chain and signed checkpoints; the service refuses to start. */
  TRAIL_UNVERIFIED: 'CR_AUDIT_TRAIL_UNVERIFIED',
  /** Quarantine reason: an `audit.checkpoint` envelope whose body is not a checkpoint signed by the sending peer. */
  CHECKPOINT_INVALID: 'CR_AUDIT_CHECKPOINT_INVALID',
} as const;

/** Raised by the audit trail; the message names the file and never contains event contents. */
export class AuditError extends RelayError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'AuditError';
  }
}
