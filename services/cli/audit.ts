// `care-relay audit verify FILE`: checks the hash chain of an audit trail.
import { isRelayError } from '../core/errors/relayError.ts';
import { verifyAuditFile } from '../core/audit/verify.ts';

const USAGE = [
  'usage: care-relay audit verify FILE',
  '',
  'Checks every line of a hash-chained audit trail (sequence, chain, hashes).',
  'Prints "ok: N entries" and exits 0, or "line N: reason" for the first bad line and exits 1.',
].join('\n');

/** Runs `care-relay audit <subcommand>`; returns the process exit code (0 ok, 1 bad trail or unreadable, 2 usage). */
export async function run(argv: string[]): Promise<number> {
  const [sub, file, ...extra] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (sub !== 'verify' || file === undefined || extra.length > 0) {
    console.error(USAGE);
    return 2;
  }
  try {
    const result = await verifyAuditFile(file);
    if (result.ok) {
      console.log(`ok: ${result.count} entries`);
      return 0;
    }
    console.log(`line ${result.line}: ${result.reason}`);
    return 1;
  } catch (err) {
    if (!isRelayError(err)) throw err;
    console.error(`care-relay audit: ${err.message}`);
    return 1;
  }
}
