// The queue operation commands on commander: `status`, `dlq ...`, `quarantine ...`. Their bodies
// are in status.ts and held.ts; configuration is read (config.ts) only once a command runs.
import type { Command} from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { checkSelection, type HeldSelection, type HoldRole } from '../core/ops/index.ts';
import type { CliIo } from './io.ts';
import type { RunState } from './program.ts';

/** A comma-separated, repeatable option, each value checked as the queue operations check it (a bad one is a usage error, exit 2). */
function list(field: 'ids' | 'reasons') {
  return (value: string, previous: string[] | undefined): string[] => {
    const values = value.split(',').map((v) => v.trim()).filter(Boolean);
    const selection: HeldSelection = field === 'ids' ? { ids: values } : { reasons: values };
    try {
      checkSelection(selection);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    return [...(previous ?? []), ...values];
  };
}

/** The ID argument of `show`: an envelope id or SQS message id. */
function messageId(value: string): string {
  try {
    checkSelection({ ids: [value] });
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function limit(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`expected an integer from 1 to ${max}`);
    return n;
  };
}

const ENVIRONMENT = `environment:
  SQS_ENDPOINT, AWS_REGION, QUEUE_PREFIX, QUEUE_FIFO   the queues, as the services use them
  DYNAMODB_ENDPOINT                                   the state tables (emergency mode)
  CARE_RELAY_INTERFACE_URL, CARE_RELAY_APP_URL        the running services (audit head, inbox fill)
  CARE_RELAY_ADMIN_TOKEN (or _FILE)                   their admin token (per service:
                                                      CARE_RELAY_INTERFACE_ADMIN_TOKEN, CARE_RELAY_APP_ADMIN_TOKEN)
  AUDIT_FILE                                          default of --audit`;

const STATUS_HELP = `usage: care-relay status [--service interface|app] [--limit N] [--json]

For each service (or --service): the queues it consumes (interface: app-to-interface and,
with partner callbacks, interface-partner-callbacks; app: interface-to-app and, with SMS,
app-sms-redaction), each with its DLQ and quarantine queue: messages visible, in flight and delayed, the age of the oldest held message, and held
messages counted by reason code; emergency mode (from the service's state table); and, from
the running service's GET /v1/admin/status, its audit trail head and (app) inbox fill.
Reading a DLQ or quarantine queue receives its messages (hidden for up to a minute, receive
count up by one) and releases them at once. Metadata only: never a body.
Exit code 1 (CR_CLI_SCAN_INCOMPLETE) when a DLQ or quarantine queue held messages that could
not be read (on a FIFO queue, those behind others of their group): the counts are partial.

options:
  --service S   interface or app (default both)
  --limit N     messages read per DLQ or quarantine queue to count reasons (default 1000)
  --json        print JSON

${ENVIRONMENT}`;

function heldHelp(role: HoldRole): string {
  const what = role === 'dlq' ? 'dead-letter queue (<queue>-dlq)' : 'quarantine queue (<queue>-quarantine)';
  return `usage: care-relay ${role} list QUEUE [--limit N] [--json]
       care-relay ${role} show QUEUE ID [--json]
       care-relay ${role} redrive QUEUE [--ids ID,...] [--reason CODE,...] [--dry-run] [--yes] [--audit FILE] [--json]
       care-relay ${role} purge QUEUE [--ids ID,...] [--reason CODE,...] [--dry-run] [--yes] [--audit FILE] [--json]

The messages set aside in the ${what} of QUEUE (a logical queue:
interface-to-app, app-to-interface, app-sms-redaction, interface-partner-callbacks).
Metadata only, never a body:
envelope id, reason code, signer fingerprint, sent, first and last receive, receive count.

  list      the held messages, oldest first (at most --limit, default 100)
  show      one message by envelope id or SQS message id
  redrive   move the selected messages back to QUEUE: same body and wire attributes,
            same FIFO group; its consumer opens and checks each one again${role === 'quarantine' ? '\n            (one that still fails is quarantined again)' : ''}
  purge     delete the selected messages for good

  --ids ID,...       only these envelope ids or SQS message ids (repeatable)
  --reason CODE,...  only messages held for these reason codes (repeatable)
  --dry-run          change nothing: list what would be done
  --yes              do not ask for confirmation (required when not on a terminal)
  --audit FILE       the CLI's audit trail (default AUDIT_FILE): one line per message acted on
                     (message.redriven / message.purged); required unless --dry-run
  --limit N          look at most at N messages (list: default 100; actions: 10000)
  --json             print JSON

Without --yes, redrive and purge first list what they would do and ask; they then act only
on the messages confirmed (one that arrived meanwhile is skipped and counted as newer).
On a FIFO queue a message group is handed out in order: messages behind others of their group
that stay in place cannot be reached (act on those first, then run again).

Progress goes to standard error: a bar on a terminal, plain lines otherwise.
Exit codes: 0 done; 1 failed, a message could not be acted on, or fewer messages could be
looked at than the queue held at the start (CR_CLI_SCAN_INCOMPLETE; not when --limit stopped
it); 2 usage error (a bad QUEUE, --ids or --reason value, no --audit: the message, then this
usage) or a confirmation needed where none can be asked.

${ENVIRONMENT}`;
}

/** Declares `status`, `dlq` and `quarantine` on the program. */
export function registerOpsCommands(program: Command, io: CliIo, state: RunState, onCommand: (cmd: Command) => void): void {
  const declare = (cmd: Command, help: string): Command => {
    onCommand(cmd);
    return cmd.configureHelp({ formatHelp: () => `${help}\n` });
  };
  const cfg = async () => (await import('./config.ts')).loadOpsConfig(io.env);

  declare(program.command('status').description('queues, DLQs, quarantine (by reason), inbox fill, emergency mode, audit head'), STATUS_HELP)
    .addOption(new Option('--service <service>').choices(['interface', 'app']))
    .addOption(new Option('--limit <n>').argParser(limit(10_000)))
    .option('--json')
    .action(async (o: { service?: 'interface' | 'app'; limit?: number; json?: boolean }) => {
      const { status } = await import('./status.ts');
      state.code = await status(await cfg(), io, o);
    });

  for (const role of ['dlq', 'quarantine'] as const) {
    const help = heldHelp(role);
    const group = declare(program.command(role).description(`list, show, redrive or purge ${role === 'dlq' ? 'dead-lettered' : 'quarantined'} messages (metadata only)`), help);
    declare(group.command('list'), help)
      .argument('<queue>')
      .addOption(new Option('--limit <n>').argParser(limit(10_000)))
      .option('--json')
      .action(async (queue: string, o: { limit?: number; json?: boolean }) => {
        const { listCommand } = await import('./held.ts');
        state.code = await listCommand(await cfg(), io, role, queue, o);
      });
    declare(group.command('show'), help)
      .argument('<queue>')
      .argument('<id>', 'envelope id or SQS message id', messageId)
      .option('--json')
      .action(async (queue: string, id: string, o: { json?: boolean }) => {
        const { showCommand } = await import('./held.ts');
        state.code = await showCommand(await cfg(), io, role, queue, id, o);
      });
    for (const action of ['redrive', 'purge'] as const) {
      declare(group.command(action), help)
        .argument('<queue>')
        .addOption(new Option('--ids <ids>').argParser(list('ids')))
        .addOption(new Option('--reason <codes>').argParser(list('reasons')))
        .option('--dry-run')
        .option('--yes')
        .option('--audit <file>')
        .addOption(new Option('--limit <n>').argParser(limit(10_000)))
        .option('--json')
        .action(async (queue: string, o: { ids?: string[]; reason?: string[]; dryRun?: boolean; yes?: boolean; audit?: string; limit?: number; json?: boolean }) => {
          const { actCommand } = await import('./held.ts');
          state.code = await actCommand(await cfg(), io, role, action, queue, o);
        });
    }
  }
}
