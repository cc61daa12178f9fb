import { defineConfig } from 'vitest/config';

// CI asks for a JSON report beside the console output, to print one summary line.
const report = process.env.CARE_RELAY_FAULTS_REPORT;

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
    reporters: report ? ['default', 'json'] : ['default'],
    outputFile: report ? { json: report } : {},
  },
});
