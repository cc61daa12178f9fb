import { defineConfig } from 'vitest/config';

// CI asks for a JSON report beside the console output, to print one summary line.
const report = process.env.CARE_RELAY_TEST_REPORT;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    exclude: ['test/faults/**', 'node_modules/**'],
    // Generous: tests wait on conditions, and a loaded 2-core machine starts real processes slowly.
    testTimeout: 90_000,
    hookTimeout: 120_000,
    // Two cores: keep crypto-heavy files from starving each other.
    maxWorkers: 2,
    reporters: report ? ['default', 'json'] : ['default'],
    outputFile: report ? { json: report } : {},
    coverage: { provider: 'v8', include: ['services/**/*.ts'], reporter: ['text-summary'] },
  },
});
