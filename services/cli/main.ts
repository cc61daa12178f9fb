#!/usr/bin/env node
// The care-relay command: `care-relay <group> [subcommand] [options]`.
// Each group lives in its own file and exports `run(argv): Promise<number>`.

const groups: Record<string, { file: string; summary: string }> = {
  keys: { file: './keys.ts', summary: 'create, inspect and rotate OpenPGP keys' },
  queues: { file: './queues.ts', summary: 'create the SQS queues, DLQs and quarantine queues' },
  deploy: { file: './deploy.ts', summary: 'prepare keys, passphrases, HMAC keys and tokens for docker compose' },
  tokens: { file: './tokens.ts', summary: 'add, revoke and list partner, app and admin bearer tokens' },
  audit: { file: './audit.ts', summary: 'verify an audit trail: hash chain and signed checkpoints' },
  sms: { file: './sms.ts', summary: 'SignalWire tools (sweep: redact historical messages)' },
  hl7: { file: './hl7.ts', summary: 'send an HL7 v2 message over MLLP and print the ACK' },
  dev: { file: './dev.ts', summary: 'run everything locally (what `npm start` does)' },
};

function usage(): string {
  const lines = Object.entries(groups).map(([name, g]) => `  ${name.padEnd(8)} ${g.summary}`);
  return ['usage: care-relay <command> [options]', '', 'commands:', ...lines, '', 'Run `care-relay <command> --help` for details.'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const group = groups[name];
  if (!group) {
    console.error(`care-relay: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = (await import(group.file)) as { run: (argv: string[]) => Promise<number> };
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // One clear line, never a stack of internals (and never key material).
    console.error(`care-relay: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
