/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  // jose ships ES modules only; let swc turn it into CommonJS for the test runtime.
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  testTimeout: 60000,
  globalSetup: '<rootDir>/test/globalSetup.ts',
  globalTeardown: '<rootDir>/test/globalTeardown.ts',
  // The end-to-end secret scan (test/helpers/secretScan.ts): error bodies recorded, its test file last.
  setupFilesAfterEnv: ['<rootDir>/test/setup/recordErrorBodies.ts'],
  testSequencer: '<rootDir>/test/setup/sequencer.js',
};
