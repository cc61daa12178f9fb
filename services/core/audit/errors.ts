import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Stable codes of the audit trail; none is public over HTTP (docs/errors.md, "Audit"). */
export const AUDIT_ERRORS = defineErrors({
  CR_AUDIT_TAIL_BROKEN: { title: 'Audit trail tail broken', description: "The existing file's last line is not a valid chained entry, so the chain cannot be continued." },
  CR_AUDIT_WRITE_FAILED: { title: 'Audit write failed', description: 'Writing or syncing a line failed; the trail refuses further records (fail closed).' },
  CR_AUDIT_CLOSED: { title: 'Audit trail closed', description: 'record() was called after close().' },
  CR_AUDIT_UNREADABLE: { title: 'Audit trail unreadable', description: 'The audit file, a closed segment or the archive ledger could not be opened or read.' },
  CR_AUDIT_TRAIL_UNVERIFIED: { title: 'Audit trail unverified', description: 'At start, the trail does not verify against its chain and signed checkpoints; the service refuses to start.' },
  CR_AUDIT_CHECKPOINT_INVALID: { title: 'Audit checkpoint invalid', description: 'Quarantine reason: an `audit.checkpoint` envelope whose body is not a checkpoint signed by the sending peer.' },
  CR_AUDIT_WITNESS_HELD_ELSEWHERE: { title: 'Checkpoint being witnessed elsewhere', description: 'Retry reason: another instance of this service is witnessing the same checkpoint envelope under a live lease.' },
} as const);

/** One of the {@link AUDIT_ERRORS} codes. */
export type AuditErrorCode = ErrorCode<typeof AUDIT_ERRORS>;

/** Raised by the audit trail; the message names the file and never contains event contents. */
export class AuditError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: AuditErrorCode;

  constructor(code: AuditErrorCode, message: string, cause?: unknown) {
    super(code, message, fromCatalogue(AUDIT_ERRORS[code], { cause }));
    this.name = 'AuditError';
    this.code = code;
  }
}
