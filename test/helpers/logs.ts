import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../services/core/log/logger.ts';

/** A pino logger whose JSON lines are kept for assertions. */
export interface CapturedLogger {
  /** The logger to inject. */
  logger: Logger;
  /** Every line written, raw. */
  lines: string[];
  /** Every line, parsed. */
  entries(): Array<Record<string, unknown>>;
}

/** Creates a logger at `debug` that records every line it writes (as pino's own tests do with a sink). */
export function captureLogger(service: string, level = 'debug'): CapturedLogger {
  const lines: string[] = [];
  let partial = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      partial += chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      done();
    },
  });
  const logger = createLogger({ service, level, destination });
  return { logger, lines, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
