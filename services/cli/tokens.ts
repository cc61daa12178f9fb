// `care-relay tokens`: add, revoke and list the bearer tokens of the partners file, the
// app's API tokens file and an admin tokens file, instead of editing JSON by hand.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addToken, APP_ROLES, DEV_TOKEN_FILES, readEntries, revokeToken, TOKEN_KINDS, type TokenKind } from './tokenFiles.ts';

/** Where the command writes its output and how it signals a service (tests pass their own). */
export interface TokensCliIo {
  /** Standard output lines; default console.log. */
  out?: (line: string) => void;
  /** Error lines; default console.error. */
  err?: (line: string) => void;
  /** Sends SIGHUP to a process; default process.kill. */
  hup?: (pid: number) => void;
}

/** Help of `care-relay tokens`. */
export const USAGE = `usage: care-relay tokens add --kind KIND --name NAME [--role ROLE]... [--file FILE] [--hup PID]
       care-relay tokens revoke --kind KIND --name NAME [--file FILE] [--hup PID]
       care-relay tokens list --kind KIND [--file FILE]

  add      create a token, store only its sha256, print the token once (keep it: it is not
           stored anywhere)
  revoke   remove the token with this name
  list     print names and roles (never hashes)

KIND is the file the token belongs to:
  partner  the interface's PARTNERS_FILE (role partner; --content-type, --allow-cidr,
           --rate-limit set the partner's controls)
  app      the app's APP_TOKENS_FILE (one or more --role: ${APP_ROLES.join(', ')})
  admin    an ADMIN_TOKENS_FILE (role admin)

options:
  --file FILE          the tokens file (default: the dev file under .data/dev, as npm start uses)
  --hup PID            send SIGHUP to that process afterwards, so the service reloads the file
                       (npm start passes it on to both services)
  --content-type T     partner: a media type it may send (repeatable; default all)
  --allow-cidr C       partner: an address or CIDR block it may submit from (repeatable)
  --rate-limit N       partner: submissions per minute

Files are written 0600. A running service reads the change on SIGHUP
(\`kill -HUP <pid>\`, \`docker compose kill -s HUP interface\`), without a restart.`;

/** The options of every `tokens` subcommand (node:util parseArgs form; the runner declares the same to commander). */
export const OPTIONS = {
  kind: { type: 'string' },
  name: { type: 'string' },
  file: { type: 'string' },
  role: { type: 'string', multiple: true },
  'content-type': { type: 'string', multiple: true },
  'allow-cidr': { type: 'string', multiple: true },
  'rate-limit': { type: 'string' },
  hup: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `care-relay tokens <subcommand>`; resolves with the exit code. */
export async function run(argv: string[], io: TokensCliIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  const hup = io.hup ?? ((pid: number) => process.kill(pid, 'SIGHUP'));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: OPTIONS,
    });
  } catch (e) {
    err(`care-relay tokens: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  const [sub] = parsed.positionals;
  if (v.help || sub === 'help') {
    out(USAGE);
    return 0;
  }
  const usageError = (message: string): number => {
    err(`care-relay tokens: ${message}\n\n${USAGE}`);
    return 2;
  };
  if (sub !== 'add' && sub !== 'revoke' && sub !== 'list') return usageError(sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`);
  if (!TOKEN_KINDS.includes(v.kind as TokenKind)) return usageError(`--kind: expected one of ${TOKEN_KINDS.join(', ')}`);
  const kind = v.kind as TokenKind;
  if (sub !== 'list' && !v.name) return usageError('--name is required');
  const hupPid = v.hup === undefined ? undefined : Number(v.hup);
  if (hupPid !== undefined && (!Number.isInteger(hupPid) || hupPid < 2)) return usageError(`--hup: expected a process id, got "${v.hup}"`);
  const rateLimit = v['rate-limit'] === undefined ? undefined : Number(v['rate-limit']);
  if (rateLimit !== undefined && !Number.isInteger(rateLimit)) return usageError(`--rate-limit: expected an integer, got "${v['rate-limit']}"`);
  if (kind !== 'partner' && (v['content-type'] || v['allow-cidr'] || rateLimit !== undefined)) return usageError('--content-type, --allow-cidr and --rate-limit are for partners');
  const file = v.file ?? join('.data', 'dev', DEV_TOKEN_FILES[kind]);

  try {
    if (sub === 'list') {
      for (const t of await readEntries(file, kind)) {
        const roles = Array.isArray(t.roles) ? (t.roles as string[]) : kind === 'partner' ? ['partner'] : [];
        const extra = kind === 'partner' ? `  ${Array.isArray(t.contentTypes) ? (t.contentTypes as string[]).join(',') : 'all content types'}` : '';
        out(`${String(t.name)}  ${roles.join(',') || '(no roles)'}${extra}`);
      }
      return 0;
    }
    if (sub === 'add') {
      const token = await addToken(file, kind, {
        name: v.name!,
        ...(v.role ? { roles: v.role } : {}),
        ...(v['content-type'] ? { contentTypes: v['content-type'] } : {}),
        ...(v['allow-cidr'] ? { allowCidrs: v['allow-cidr'] } : {}),
        ...(rateLimit !== undefined ? { rateLimitPerMinute: rateLimit } : {}),
      });
      out(`Added ${kind} token "${v.name}" to ${file}. The token (shown only this once):`);
      out(token);
    } else {
      if (!(await revokeToken(file, kind, v.name!))) {
        err(`care-relay tokens: ${file} has no token named "${v.name}"`);
        return 1;
      }
      out(`Revoked ${kind} token "${v.name}" in ${file}.`);
    }
    if (hupPid !== undefined) {
      hup(hupPid);
      out(`Sent SIGHUP to process ${hupPid}: the service reloads the file.`);
    } else {
      out('A running service reads the change on SIGHUP (kill -HUP <pid>, or docker compose kill -s HUP <service>), or use --hup PID.');
    }
    return 0;
  } catch (e) {
    err(`care-relay tokens: ${(e as Error).message}`);
    return 1;
  }
}
