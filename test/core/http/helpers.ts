import type { Logger } from 'pino';
import { createLogger } from '../../../services/core/log/logger.ts';

/** A logger whose JSON lines are kept in `lines` (parsed) and `text` (raw), as pino wrote them. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[]; text: () => string } {
  const raw: string[] = [];
  const logger = createLogger({ service: 'test', level: 'debug', destination: { write: (s: string) => void raw.push(s) } });
  return {
    logger,
    get lines() {
      return raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}
