import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { hashPassword } from './worker/auth/password-hash.ts';
import { cimdStandIn } from './test/harness/cimd-stand-in.ts';

// Fixed test secrets for the Workers pool only (the e2e harness makes fresh ones per run).
// RELAY_TOKEN_HASH is sha256("test-relay-token-0123456789abcdef").
const TEST_RELAY_TOKEN_HASH = 'd0640f9ee2879b50e5ef6dc4fda2963c57fcd3b93ded28042acda901dc64e887';
// The admin password is test/workers/oauth-flow.ts TEST_ADMIN_PASSWORD; only its hash reaches the Worker.
const TEST_ADMIN_PASSWORD_HASH = await hashPassword('pool-admin-password-41f7', 20_000);

export default defineConfig({
  test: {
    // Logs of passing tests are noise; a failing test still shows everything it printed.
    silent: 'passed-only',
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                PUBLIC_URL: 'http://127.0.0.1:8787',
                RELAY_TOKEN_HASH: TEST_RELAY_TOKEN_HASH,
                ADMIN_PASSWORD_HASH: TEST_ADMIN_PASSWORD_HASH,
              },
              // The Worker's outbound fetch() (CIMD documents) goes to a stand-in, not the network.
              outboundService: cimdStandIn,
            },
          }),
        ],
        test: {
          name: 'workers',
          include: ['test/workers/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // The stdio tests run the built command, as users do; build it from the current sources.
          globalSetup: ['test/e2e/build-cli.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Each file starts sshd + wrangler dev + relay; two at a time suits a 2-core machine.
          maxWorkers: 2,
        },
      },
      {
        test: {
          // Fault injection: kills, restarts and stalls real processes (relay, sshd, the local Worker,
          // a TCP proxy that goes silent) and checks what the caller sees and what is left behind.
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/e2e/build-cli.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          maxWorkers: 2,
        },
      },
    ],
  },
});
