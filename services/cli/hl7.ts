// `care-relay hl7 send FILE --to HOST:PORT`: sends one HL7 v2 message over MLLP (as a
// partner would) and prints the acknowledgement. For trying intake and for checking a
// partner link; the message itself is never printed.
import { readFile } from 'node:fs/promises';
import { MllpConnection } from '../interface/mllp/connection.ts';
import { Hl7ParseError, parseHl7, readAck } from '../interface/mllp/hl7.ts';

/** Help of `care-relay hl7`. */
export const usage = `usage: care-relay hl7 send FILE --to HOST:PORT [--tls --ca FILE [--cert FILE --key FILE] [--servername NAME]] [--timeout MS]

Sends the HL7 v2 message in FILE over MLLP and prints the ACK (MSA and ERR).
Line ends in FILE may be LF or CRLF: segments are sent separated by CR, as HL7 requires.
  --to HOST:PORT   the MLLP listener (care-relay's MLLP_INTAKE_PORT)
  --tls            use TLS; --ca pins the listener's CA, --cert/--key present a client certificate
  --timeout MS     how long to wait for the ACK (default 10000)
Exit code: 0 for AA/CA, 1 for AE/CE/AR/CR or no ACK, 2 for usage errors.`;

/** The options of `hl7 send` (node:util parseArgs form): the runner declares them to commander, which checks them before `run`. */
export const OPTIONS = {
  to: { type: 'string' },
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  servername: { type: 'string' },
  timeout: { type: 'string' },
} as const;

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Runs `care-relay hl7 ...`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, file] = argv;
  if (sub !== 'send' || !file || argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    return sub === undefined || argv.includes('--help') || argv.includes('-h') ? 0 : 2;
  }
  const to = option(argv, '--to');
  const match = to ? /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(to) : null;
  if (!match) {
    console.error('care-relay hl7 send: --to: expected HOST:PORT');
    return 2;
  }
  const host = match[1]!.replace(/^\[|\]$/g, '');
  const port = Number(match[2]);
  const timeoutMs = Number(option(argv, '--timeout') ?? 10_000);
  const tls = argv.includes('--tls');
  const caFile = option(argv, '--ca');
  if (tls && !caFile) {
    console.error('care-relay hl7 send: --tls needs --ca FILE (the CA the listener certificate must chain to)');
    return 2;
  }
  const certFile = option(argv, '--cert');
  const keyFile = option(argv, '--key');
  const servername = option(argv, '--servername');

  // Segments end with CR (HL7 v2 §2.5); editors write LF or CRLF.
  const message = Buffer.from((await readFile(file, 'latin1')).replace(/\r?\n/g, '\r'), 'latin1');
  let controlId: string;
  try {
    controlId = parseHl7(message).controlId;
  } catch (err) {
    console.error(`care-relay hl7 send: ${file}: ${err instanceof Hl7ParseError ? err.message : 'not an HL7 v2 message'}`);
    return 2;
  }
  const connection = new MllpConnection({
    host,
    port,
    connectTimeoutMs: timeoutMs,
    ...(tls
      ? {
          tls: {
            ca: await readFile(caFile!),
            ...(certFile && keyFile ? { cert: await readFile(certFile), key: await readFile(keyFile) } : {}),
            ...(servername ? { servername } : {}),
          },
        }
      : {}),
  });
  try {
    const exchange = await connection.exchange(message, timeoutMs, new AbortController().signal);
    if (exchange.kind === 'failed') {
      console.error(`care-relay hl7 send: no acknowledgement (${exchange.reason})`);
      return 1;
    }
    let ack;
    try {
      ack = readAck(exchange.payload);
    } catch {
      console.error('care-relay hl7 send: the answer is not a readable HL7 acknowledgement');
      return 1;
    }
    // The ACK holds codes, ids and our short texts only: print its segments one per line.
    console.log(exchange.payload.toString('utf8').replace(/\r$/, '').replaceAll('\r', '\n'));
    if (ack.controlId !== controlId) console.error(`care-relay hl7 send: MSA-2 does not match the MSH-10 sent`);
    return (ack.code === 'AA' || ack.code === 'CA') && ack.controlId === controlId ? 0 : 1;
  } finally {
    connection.close();
  }
}
