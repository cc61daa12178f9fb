import { defineConfig } from 'vitest/config';

// `npm run test:faults`: the fault-injection and load suite, against the real processes.
// Not part of `npm test` (the main config excludes test/faults/**). Files run one at a
// time: the load scenario needs both cores, and the timing scenarios must not be starved.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/faults/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    sequence: { concurrent: false },
    reporters: ['default'],
  },
});
