// How the runner reports a failure: one line with a code and a message, never a stack or PHI.
import { isRelayError } from '../core/errors/relayError.ts';
import { errorCode } from '../core/transport/errors.ts';
import { CliError } from './errors.ts';

/** One line of text, without control characters, at most 300 characters. */
export function oneLine(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 300);
}

/** Code and message of a failure: a RelayError's own, else the error's type or system code only. */
export function describeFailure(err: unknown): { code: string; message: string; exitCode: 1 | 2 } {
  if (err instanceof CliError) return { code: err.code, message: oneLine(err.message), exitCode: err.exitCode };
  if (isRelayError(err)) return { code: err.code, message: oneLine(err.message), exitCode: 1 };
  // Not ours: the message could carry anything, so only a system code (ENOENT, an AWS error name) and, for a system error, its text.
  const sys = errorCode(err);
  const message = err instanceof Error && /^E[A-Z]+$/.test(sys) ? oneLine(err.message) : `unexpected failure (${sys})`;
  return { code: 'CR_CLI_UNEXPECTED', message, exitCode: 1 };
}

