// The command tree of `care-relay` on commander: every command and subcommand, its options and
// arguments. Commander checks an invocation (unknown command or option, missing or extra
// argument, `--help` anywhere) before any command body runs. The groups that predate it keep
// their bodies and their `run(argv)` entry (tests and `dev` call it): the tree declares their
// options from the same `OPTIONS` objects their own parser uses, and hands them the arguments
// once commander has accepted them.
import { Command, Option } from 'commander';
import type { CliIo } from './io.ts';

/** parseArgs-style option declarations, as the groups export them. */
type ParseArgsOptions = Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly multiple?: boolean; readonly short?: string }>>;

/** A group that predates the runner: its file, summary and subcommands with their arguments. */
interface LegacyGroup {
  /** Module path, imported only when the group is invoked. */
  file: string;
  /** One line for the top-level help. */
  summary: string;
  /** Subcommand → its positional arguments (`<file>`); absent for a group without subcommands (`dev`). */
  subs?: Record<string, string[]>;
}

/** The groups whose bodies live in their own files (one per group, `run(argv)`). */
export const LEGACY_GROUPS: Readonly<Record<string, LegacyGroup>> = {
  keys: { file: './keys.ts', summary: 'create, inspect and rotate OpenPGP keys', subs: { init: [], generate: [], 'add-peer': ['<file>'], fingerprint: ['<file>'], rotate: [] } },
  queues: { file: './queues.ts', summary: 'create the SQS queues, DLQs and quarantine queues', subs: { init: [], list: [] } },
  deploy: { file: './deploy.ts', summary: 'prepare keys, passphrases, HMAC keys and tokens for docker compose', subs: { prepare: [] } },
  tokens: { file: './tokens.ts', summary: 'add, revoke and list partner, app and admin bearer tokens', subs: { add: [], revoke: [], list: [] } },
  audit: { file: './audit.ts', summary: 'verify an audit trail: hash chain and signed checkpoints', subs: { verify: ['<trail...>'] } },
  sms: { file: './sms.ts', summary: 'SignalWire tools (sweep: redact historical messages)', subs: { sweep: [] } },
  hl7: { file: './hl7.ts', summary: 'send an HL7 v2 message over MLLP and print the ACK', subs: { send: ['<file>'] } },
  dev: { file: './dev.ts', summary: 'run everything locally (what `npm start` does)' },
};

/** What a loaded legacy group module offers. */
interface LegacyModule {
  run(argv: string[]): Promise<number>;
  USAGE?: string;
  usage?: string;
  MAIN_USAGE?: string;
  OPTIONS?: ParseArgsOptions;
  commands?: Record<string, { usage: string; options: ParseArgsOptions }>;
}

/** The shared state of one run: the exit code the action sets. */
export interface RunState {
  /** Exit code of the action that ran. */
  code: number;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Declares parseArgs-style options on a commander command (help and short flags excepted: commander owns them). */
function declareOptions(cmd: Command, options: ParseArgsOptions | undefined): void {
  for (const [name, o] of Object.entries(options ?? {})) {
    if (name === 'help' || name === 'h') continue;
    if (o.type === 'boolean') cmd.addOption(new Option(`--${name}`));
    else if (o.multiple) cmd.addOption(new Option(`--${name} <value>`).argParser(collect));
    else cmd.addOption(new Option(`--${name} <value>`));
  }
}

/** Sets a command's help to a fixed text (the group's own usage). */
export function helpText(cmd: Command, text: string): Command {
  return cmd.configureHelp({ formatHelp: () => `${text.replace(/\n+$/, '')}\n` });
}

function rootHelp(): string {
  const lines = [...Object.entries(LEGACY_GROUPS).map(([name, g]) => [name, g.summary] as const), ...OPS_SUMMARIES].map(([name, s]) => `  ${name.padEnd(11)} ${s}`);
  return ['usage: care-relay <command> [options]', '', 'commands:', ...lines, '', 'Run `care-relay <command> --help` for details. Exit codes: 0 ok, 1 failure, 2 usage error.'].join('\n');
}

/** Summaries of the queue operation commands, for the top-level help. */
const OPS_SUMMARIES: readonly (readonly [string, string])[] = [
  ['status', 'queues, DLQs, quarantine (by reason), inbox fill, emergency mode, audit head'],
  ['dlq', 'list, show, redrive or purge dead-lettered messages (metadata only)'],
  ['quarantine', 'list, show, redrive or purge quarantined messages (metadata only)'],
];

/**
 * Builds the program for one invocation. Only the invoked legacy group is loaded (its help
 * texts and options); the others are declared by name, so `care-relay --help` stays light.
 */
export async function buildProgram(argv: readonly string[], io: CliIo, state: RunState, onCommand: (cmd: Command) => void): Promise<Command> {
  const program = new Command('care-relay');
  onCommand(program);
  helpText(program, rootHelp());
  const words = argv.filter((a) => !a.startsWith('-'));
  const invoked = words[0] === 'help' ? words[1] : words[0];
  for (const [name, group] of Object.entries(LEGACY_GROUPS)) {
    const cmd = program.command(name).description(group.summary);
    onCommand(cmd);
    if (name !== invoked) {
      // Never run: only the invoked group is declared in full.
      cmd.allowUnknownOption().allowExcessArguments();
      continue;
    }
    const mod = (await import(group.file)) as LegacyModule;
    const forward = async (): Promise<void> => {
      state.code = await mod.run(argv.slice(argv.indexOf(name) + 1));
    };
    const groupUsage = mod.MAIN_USAGE ?? mod.USAGE ?? mod.usage ?? group.summary;
    helpText(cmd, groupUsage);
    if (!group.subs) {
      declareOptions(cmd, mod.OPTIONS);
      cmd.action(forward);
      continue;
    }
    for (const [subName, args] of Object.entries(group.subs)) {
      const sub = cmd.command(subName);
      onCommand(sub);
      for (const a of args) sub.argument(a);
      const own = mod.commands?.[subName];
      declareOptions(sub, own?.options ?? mod.OPTIONS);
      helpText(sub, own?.usage ?? groupUsage);
      sub.action(forward);
    }
  }
  if (invoked !== undefined && OPS_SUMMARIES.some(([name]) => name === invoked)) {
    (await import('./opsCommands.ts')).registerOpsCommands(program, io, state, onCommand);
  } else {
    for (const [name, summary] of OPS_SUMMARIES) onCommand(program.command(name).description(summary).allowUnknownOption().allowExcessArguments());
  }
  return program;
}
