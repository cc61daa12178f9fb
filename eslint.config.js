// Lint: typescript-eslint's recommended rules plus the house rules from STYLE.md.
import tseslint from 'typescript-eslint';

// An import of the test tree (later rules for the same files replace this one, so each repeats it).
const TEST_CODE = { group: ['**/test/**'], message: 'services/ must not import test code; dev tools live in services/devtools.' };
const otherService = (...group) => ({ group, message: 'The services never import each other; core imports neither.' });
// Dev tools (fakes, emulator, demo sink) are for `care-relay dev`, the tests and the bench, never a service.
const DEV_TOOLS = { group: ['**/devtools/**'], message: 'The services never load dev tools; only the CLI, tests and bench do.' };

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', 'coverage/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Only the services read the environment, each in its own config.ts.
    files: ['services/**/*.ts'],
    ignores: ['services/**/config.ts', 'services/cli/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read the environment only in config.ts.' }],
    },
  },
  {
    // The CLI, tests and benchmarks talk to a person on the terminal.
    files: ['services/cli/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.{ts,mjs}'],
    rules: { 'no-console': 'off' },
  },
  {
    // Run-time code never loads test code: what `npm start` needs lives in services/devtools.
    files: ['services/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [TEST_CODE] }],
      'no-restricted-syntax': ['error', { selector: String.raw`ImportExpression[source.value=/(^|\/)test\//]`, message: 'services/ must not load test code.' }],
    },
  },
  {
    // The two services never import each other; core imports neither.
    files: ['services/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [TEST_CODE, DEV_TOOLS, otherService('**/interface/**', '**/app/**')] }] },
  },
  {
    files: ['services/interface/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [TEST_CODE, DEV_TOOLS, otherService('**/app/**')] }] },
  },
  {
    files: ['services/app/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [TEST_CODE, DEV_TOOLS, otherService('**/interface/**')] }] },
  },
);
