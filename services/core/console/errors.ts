import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Codes of the operator console (docs/errors.md, "Console"). */
export const CONSOLE_ERRORS = defineErrors({
  CR_CONSOLE_SIGNED_OUT: { status: 401, title: 'Console session ended', description: 'No console session, or it ended (idle logoff, lifetime, sign-out): sign in again.' },
  CR_CONSOLE_CSRF: { status: 403, title: 'Console form not accepted', description: 'A state-changing console request without the session\'s CSRF token or from another origin.' },
  CR_CONSOLE_CONFIRMATION_REQUIRED: { status: 400, title: 'Confirmation required', description: 'A console action that must be confirmed (emergency switch, redrive, purge) was sent without its confirmation.' },
} as const);

/** One of the {@link CONSOLE_ERRORS} codes. */
export type ConsoleErrorCode = ErrorCode<typeof CONSOLE_ERRORS>;

/** A console request refused: one of {@link CONSOLE_ERRORS}. */
export class ConsoleError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: ConsoleErrorCode;

  constructor(code: ConsoleErrorCode, message: string) {
    super(code, message, fromCatalogue(CONSOLE_ERRORS[code]));
    this.name = 'ConsoleError';
    this.code = code;
  }
}
