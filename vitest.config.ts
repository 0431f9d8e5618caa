import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      '{packages/*,agent,cloud-hub,converters,device-profiles}/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    globalSetup: ['./test/support/global-setup.ts'],
    // Two cores: e2e suites spawn hubs, agents and browsers; more workers only adds contention.
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
