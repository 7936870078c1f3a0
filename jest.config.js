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
  },
  testMatch: ['<rootDir>/tests/**/*.test.ts'],
  globalSetup: '<rootDir>/tests/global-setup.ts',
  globalTeardown: '<rootDir>/tests/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
