import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites share real services (RabbitMQ) and bind real sockets; a handful of workers is plenty
    // on a 2-core machine and keeps broker load predictable.
    maxWorkers: 2,
  },
});
