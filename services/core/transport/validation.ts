// Producer and consumer options are checked where they enter: a bad one throws naming the
// option and what was expected, never clamped into range behind the caller's back.
import { TransportError } from './errors.ts';

/** Throws CR_TRANSPORT_INVALID_OPTION unless `value` (when given) is an integer from `min` to `max`. */
export function checkInteger(owner: string, option: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new TransportError('CR_TRANSPORT_INVALID_OPTION', `${owner} option ${option}: expected an integer ${range}, got ${String(value)}`);
  }
}

/** Throws CR_TRANSPORT_INVALID_OPTION unless `value` (when given) is a finite number of at least `min` (above it when `exclusive`). */
export function checkNumber(owner: string, option: string, value: number | undefined, min: number, exclusive = false): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (exclusive && value === min)) {
    throw new TransportError('CR_TRANSPORT_INVALID_OPTION', `${owner} option ${option}: expected a number ${exclusive ? 'above' : 'of at least'} ${min}, got ${String(value)}`);
  }
}

/** Throws CR_TRANSPORT_INVALID_OPTION unless `queue` is a resolved queue (from resolveQueues or ensureQueues). */
export function checkQueue(owner: string, queue: { url?: unknown; dlqUrl?: unknown; quarantineUrl?: unknown; fifo?: unknown } | undefined): void {
  const ok = queue !== undefined && typeof queue.url === 'string' && queue.url !== '' && typeof queue.fifo === 'boolean'
    && typeof queue.dlqUrl === 'string' && typeof queue.quarantineUrl === 'string';
  if (!ok) throw new TransportError('CR_TRANSPORT_INVALID_OPTION', `${owner} option queue: expected a resolved queue (url, fifo, dlqUrl, quarantineUrl) from resolveQueues or ensureQueues`);
}
