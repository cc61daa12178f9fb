import { SERVICE_NODE_FLAGS } from '../services/core/runtime/nodeFlags.ts';

/**
 * The V8 flags the bench starts service processes with: the services' own (SERVICE_NODE_FLAGS,
 * as in production), unless BENCH_SERVICE_NODE_FLAGS gives others ('' for none), to compare.
 */
export function serviceNodeFlags(): string[] {
  const override = process.env.BENCH_SERVICE_NODE_FLAGS;
  return override === undefined ? [...SERVICE_NODE_FLAGS] : override.split(' ').filter(Boolean);
}
