// CPU and memory per log line, with the services' redaction net and with pino's own `redact` given
// the same paths (what logger.ts configured before), and with no redaction at all as the floor:
// `node --expose-gc bench/logLineCost.ts [rounds]`. The lines are the interface's per submission:
// fastify's `incoming request` and `request completed` (an object field each) and a flat one, through
// a child with a request id, to a destination that drops them. Alternated in rounds; prints the
// medians. Memory: heap growth per line with a young generation large enough that no GC runs in the
// window (run it with `--max-semi-space-size=512 --min-semi-space-size=512` for that figure).
// A measuring tool, not a section of `npm run bench` ("The log's redaction net in one pass").
import { cpus } from 'node:os';
import pino, { type Logger } from 'pino';
import { REDACT_PATHS, REDACTED, createLogger } from '../services/core/log/logger.ts';

const LINES_PER_ROUND = 3 * 5_000;
const discard = { write: (_line: string) => true } as unknown as pino.DestinationStream;
const makers: Record<string, () => Logger> = {
  'the net (censor.ts)': () => createLogger({ service: 'interface', destination: discard }),
  'pino redact, same paths': () =>
    pino({ level: 'info', base: { service: 'interface' }, redact: { paths: REDACT_PATHS, censor: REDACTED }, timestamp: pino.stdTimeFunctions.isoTime, serializers: { err: pino.stdSerializers.err } }, discard),
  'no redaction': () => pino({ level: 'info', base: { service: 'interface' }, timestamp: pino.stdTimeFunctions.isoTime, serializers: { err: pino.stdSerializers.err } }, discard),
};

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

function round(logger: Logger): { cpuUs: number; heapBytes: number } {
  const child = logger.child({ reqId: '0193d1c2-7f3a-7b41-9a2e-3c4d5e6f7a8b' });
  const lines = (n: number): void => {
    for (let i = 0; i < n; i++) {
      child.info({ req: { method: 'POST', url: '/v1/submissions', reqId: '0193d1c2', remoteAddress: '127.0.0.1' } }, 'incoming request');
      child.info({ res: { statusCode: 202 }, responseTime: 3.2 }, 'request completed');
      child.info({ envelopeId: '0193d1c2-7f3a-7b41-9a2e-3c4d5e6f7a8b', partner: 'partner-a', replayed: false }, 'submission accepted');
    }
  };
  lines(2_000);
  gc!();
  gc!();
  const heap0 = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  lines(LINES_PER_ROUND / 3);
  const cpu = process.cpuUsage(cpu0);
  const heapBytes = (process.memoryUsage().heapUsed - heap0) / LINES_PER_ROUND;
  return { cpuUs: (cpu.user + cpu.system) / LINES_PER_ROUND, heapBytes };
}

const rounds = Math.max(1, Number(process.argv[2] ?? 7));
const figures = new Map<string, { cpu: number[]; heap: number[] }>(Object.keys(makers).map((k) => [k, { cpu: [], heap: [] }]));
for (let r = 0; r < rounds; r++) {
  for (const [name, make] of Object.entries(makers)) {
    const { cpuUs, heapBytes } = round(make());
    figures.get(name)!.cpu.push(cpuUs);
    figures.get(name)!.heap.push(heapBytes);
  }
}
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}; ${rounds} rounds of ${LINES_PER_ROUND} lines each`);
for (const [name, f] of figures) {
  console.log(`${name.padEnd(26)} CPU µs per line: median ${median(f.cpu).toFixed(2)}; heap bytes per line: median ${Math.round(median(f.heap))}`);
}
