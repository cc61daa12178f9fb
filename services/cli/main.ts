#!/usr/bin/env node
// The care-relay command: `care-relay <command> [subcommand] [options]` (program.ts declares them
// all, runner.ts runs them). The exit code is set, never forced: `dev` exits once its children have.
import { runCli } from './runner.ts';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // The runner reports every failure itself; this is the last net (one line, never a stack).
    console.error(`care-relay: CR_CLI_UNEXPECTED ${err instanceof Error ? err.name : 'failure'}`);
    process.exitCode = 1;
  },
);
