import { defineErrors, type ErrorCode } from '../core/errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../core/errors/relayError.ts';

/** The command line's own error codes (docs/errors.md, "Command line"). */
export const CLI_ERRORS = defineErrors({
  CR_CLI_USAGE: { title: 'Usage error', description: 'An unknown command or option, a missing or extra argument, or an option value out of range; exit code 2.' },
  CR_CLI_CONFIRMATION_REQUIRED: { title: 'Confirmation required', description: 'redrive or purge without --yes where no terminal can ask for confirmation; exit code 2.' },
  CR_CLI_SCAN_INCOMPLETE: { title: 'Scan incomplete', description: 'list, redrive, purge or status looked at fewer held messages than the queue held at the start without reaching --limit (on a FIFO queue, messages behind others of their group that stay in place); what was read is printed; exit code 1.' },
  CR_CLI_CONFIRMATION_DECLINED: { title: 'Not confirmed', description: 'The operator answered no to a redrive or purge confirmation; nothing was changed; exit code 1.' },
  CR_CLI_SERVICE_UNREACHABLE: { title: 'Service unreachable', description: 'The admin status endpoint of a running service could not be read (down, wrong URL, refused token).' },
  CR_CLI_STATE_UNREADABLE: { title: 'State table unreadable', description: 'status could not read a service\'s emergency mode from its DynamoDB state table (shown in place of the value).' },
  CR_CLI_UNEXPECTED: { title: 'Unexpected failure', description: 'A command failed with an error that has no care-relay code; the line names its type or system code.' },
} as const);

/** One of the {@link CLI_ERRORS} codes. */
export type CliErrorCode = ErrorCode<typeof CLI_ERRORS>;

/** A command-line failure: one of {@link CLI_ERRORS}. */
export class CliError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: CliErrorCode;
  /** The exit code the runner uses: 2 for usage errors, else 1. */
  readonly exitCode: 1 | 2;

  constructor(code: CliErrorCode, message: string, options: { cause?: unknown; exitCode?: 1 | 2 } = {}) {
    super(code, message, fromCatalogue(CLI_ERRORS[code], options.cause === undefined ? {} : { cause: options.cause }));
    this.name = 'CliError';
    this.code = code;
    this.exitCode = options.exitCode ?? (code === 'CR_CLI_USAGE' || code === 'CR_CLI_CONFIRMATION_REQUIRED' ? 2 : 1);
  }
}
