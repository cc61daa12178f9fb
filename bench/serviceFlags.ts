import { SERVICE_NODE_FLAGS } from '../services/core/runtime/nodeFlags.ts';

/**
 * The V8 flags the bench starts service processes with: the services' own (SERVICE_NODE_FLAGS,
 * as in production), unless BENCH_SERVICE_NODE_FLAGS gives others ('' for none), to compare.
 */
export function serviceNodeFlags(): string[] {
  const override = process.env.BENCH_SERVICE_NODE_FLAGS;
  return override === undefined ? [...SERVICE_NODE_FLAGS] : override.split(' ').filter(Boolean);
}

/**
 * Extra environment variables the bench gives every service child it starts, from
 * BENCH_SERVICE_ENV (space-separated NAME=value pairs, e.g. `MALLOC_MMAP_THRESHOLD_=32768`), to
 * compare: glibc reads its malloc tunables when the process starts, so they must be in the
 * child's environment from the beginning.
 */
export function serviceEnv(): Record<string, string> {
  const pairs = (process.env.BENCH_SERVICE_ENV ?? '').split(' ').filter(Boolean);
  return Object.fromEntries(pairs.map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`BENCH_SERVICE_ENV: "${pair}" is not NAME=value`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }));
}
