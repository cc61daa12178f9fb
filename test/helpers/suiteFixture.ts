// One fixture per suite, started before its tests and stopped after them.
import { afterAll, beforeAll } from 'vitest';

/**
 * Starts `start()` before the suite's tests and `stop` after them. The object returned reads
 * through to what was started (read its fields inside tests and hooks: at load time nothing
 * is started yet, and reading then throws).
 */
export function suiteFixture<T extends object>(what: string, start: () => Promise<T>, stop: (started: T) => Promise<void> | void, timeoutMs?: number): T {
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
  }, timeoutMs);
  afterAll(async () => {
    if (started) await stop(started);
  });
  return new Proxy({} as T, {
    get(_target, field) {
      if (!started) throw new Error(`${what} is not started (read it inside a test or hook)`);
      return Reflect.get(started, field) as unknown;
    },
  });
}
