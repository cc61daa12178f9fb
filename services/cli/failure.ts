// How the runner reports a failure: one line with a code and a message, never a stack or PHI.
import { isRelayError } from '../core/errors/relayError.ts';
import { errorCode } from '../core/transport/errors.ts';
import { CliError } from './errors.ts';

/** One line of text, without control characters, at most 300 characters. */
export function oneLine(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 300);
}

/** Code and message of a failure: a RelayError's own (an option the queue operations refuse is CR_CLI_USAGE, exit 2), else the error's type or system code only. */
export function describeFailure(err: unknown): { code: string; message: string; exitCode: 1 | 2 } {
  if (err instanceof CliError) return { code: err.code, message: oneLine(err.message), exitCode: err.exitCode };
  // An option the queue operations refuse came from the command line: a usage error, as commander's own.
  if (isRelayError(err, 'CR_OPS_INVALID_OPTION')) return { code: 'CR_CLI_USAGE', message: oneLine(err.message), exitCode: 2 };
  if (isRelayError(err)) return { code: err.code, message: oneLine(err.message), exitCode: 1 };
  // Not ours: the message could carry anything, so only a system code (ENOENT, an AWS error name) and, for a system error, its text.
  const sys = errorCode(err);
  const message = err instanceof Error && /^E[A-Z]+$/.test(sys) ? oneLine(err.message) : `unexpected failure (${sys})`;
  return { code: 'CR_CLI_UNEXPECTED', message, exitCode: 1 };
}


/**
 * Reports a read of held messages that ended short (CR_CLI_SCAN_INCOMPLETE) as the runner reports
 * a failure: one line on standard error, JSON with --json. The command printed what it read already.
 */
export function reportIncomplete(io: { stderr(text: string): void }, json: boolean | undefined, message: string): void {
  const m = oneLine(message);
  io.stderr(json ? `${JSON.stringify({ error: { code: 'CR_CLI_SCAN_INCOMPLETE', message: m } })}\n` : `care-relay: CR_CLI_SCAN_INCOMPLETE ${m}\n`);
}
