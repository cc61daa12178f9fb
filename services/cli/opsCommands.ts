// The queue operation commands on commander: `status`, `dlq ...`, `quarantine ...`. Their bodies
// are in status.ts and held.ts; configuration is read (config.ts) only once a command runs.
import type { Command} from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { HoldRole } from '../core/ops/index.ts';
import type { CliIo } from './io.ts';
import type { RunState } from './program.ts';

const list = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').map((v) => v.trim()).filter(Boolean)];

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

For each service (or --service): the queues it consumes, each with its DLQ and quarantine
queue: messages visible, in flight and delayed, the age of the oldest held message, and held
messages counted by reason code; emergency mode (from the service's state table); and, from
the running service's GET /v1/admin/status, its audit trail head and (app) inbox fill.
Reading a DLQ or quarantine queue receives its messages (hidden for up to a minute, receive
count up by one) and releases them at once. Metadata only: never a body.

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
interface-to-app, app-to-interface, app-sms-redaction). Metadata only, never a body:
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

Progress goes to standard error: a bar on a terminal, plain lines otherwise.
Exit codes: 0 done, 1 failed (or a message could not be acted on), 2 usage error or
confirmation needed but not possible.

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
      .argument('<id>')
      .option('--json')
      .action(async (queue: string, id: string, o: { json?: boolean }) => {
        const { showCommand } = await import('./held.ts');
        state.code = await showCommand(await cfg(), io, role, queue, id, o);
      });
    for (const action of ['redrive', 'purge'] as const) {
      declare(group.command(action), help)
        .argument('<queue>')
        .addOption(new Option('--ids <ids>').argParser(list))
        .addOption(new Option('--reason <codes>').argParser(list))
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
