/** Jest runs TypeScript through swc (TypeScript 7 has no JS compiler API for ts-jest). */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    // .js: the page's browser modules, which the unit tests import.
    '^.+\\.(ts|js)$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
    // request-filtering-agent ships ES modules only; Jest's CommonJS runtime needs them compiled.
    '/request-filtering-agent/lib/.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!.*request-filtering-agent/lib/)'],
  testMatch: ['<rootDir>/tests/**/*.test.ts'],
  globalSetup: '<rootDir>/tests/global-setup.ts',
  globalTeardown: '<rootDir>/tests/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
