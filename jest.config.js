/** Nest 12 is ESM-only; Jest runs CommonJS, so swc transpiles it along with our TypeScript. */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];
const base = {
  transform: { '^.+\\.(t|j)s$': swc },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
  // Specs run the client package from its source; its ESM imports name the compiled `.js` files.
  moduleNameMapper: {
    '^@auth-service/client$': '<rootDir>/client/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
module.exports = {
  // Jest reads testTimeout from the root config only; the e2e project's own value alone is ignored.
  testTimeout: 60000,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'], testTimeout: 60000 },
  ],
};
