// The one runner of every `care-relay` command: parse (commander), run, and map the outcome to an
// exit code and at most one line on standard error. 0: done; 1: failed (one line: code and
// message, never a stack or PHI); 2: usage error (the message, then the command's usage), or a
// confirmation needed where none can be asked (one line).
// `--json` (on the commands that offer it) also turns the failure line into JSON.
import type { CommanderError} from 'commander';
import { type Command } from 'commander';
import { processIo, type CliIo } from './io.ts';
import { buildProgram, type RunState } from './program.ts';

/** A commander usage error, with the command it happened on. */
class UsageExit extends Error {
  /** What commander reported. */
  readonly commander: CommanderError;
  /** The command it was parsing. */
  readonly command: Command;

  constructor(commander: CommanderError, command: Command) {
    super(commander.message);
    this.commander = commander;
    this.command = command;
  }
}

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Runs one command line; resolves with its exit code (never calls process.exit). */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const state: RunState = { code: 0 };
  const json = argv.includes('--json');
  let program: Command;
  // The command whose action is running: a usage error it raises is followed by its usage.
  let running: Command | undefined;
  try {
    program = await buildProgram(argv, io, state, (cmd) => {
      cmd.exitOverride((e) => {
        throw new UsageExit(e, cmd);
      });
      cmd.configureOutput({ writeOut: (t) => io.stdout(t), writeErr: (t) => io.stderr(t), outputError: () => undefined });
    });
    program.hook('preAction', (_, action) => {
      running = action;
    });
    await program.parseAsync([...argv], { from: 'user' });
    return state.code;
  } catch (err) {
    if (err instanceof UsageExit) {
      const e = err.commander;
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // A group invoked without its subcommand: commander has printed its help on stderr.
      if (e.code === 'commander.help') return 2;
      const message = (e.message.replace(/^error: /, '').split('\n')[0] ?? '').slice(0, 300);
      if (json) io.stderr(`${JSON.stringify({ error: { code: 'CR_CLI_USAGE', message } })}\n`);
      else io.stderr(`${pathOf(err.command)}: ${message}\n\n${err.command.helpInformation()}`);
      return 2;
    }
    const f = (await import('./failure.ts')).describeFailure(err);
    const usage = f.code === 'CR_CLI_USAGE' && running ? `\n${running.helpInformation()}` : '';
    io.stderr(json ? `${JSON.stringify({ error: { code: f.code, message: f.message } })}\n` : `care-relay: ${f.code} ${f.message}\n${usage}`);
    return f.exitCode;
  }
}
