/**
 * What the relay config tests share: a temporary folder with freshly generated keys and a listening
 * UNIX socket (what a config's agent path is checked against; nothing connects to it), and the
 * message of the ConfigError a load throws.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../relay/config.ts';

export interface ConfigFixture {
  dir: string;
  /** The private key files by the names given, each an Ed25519 key (with its passphrase, if one was given). */
  keys: Record<string, string>;
  socket: string;
  close(): Promise<void>;
}

/** `keys`: file name → passphrase ('' for none). */
export async function configFixture(prefix: string, keys: Record<string, string>): Promise<ConfigFixture> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const paths: Record<string, string> = {};
  for (const [name, passphrase] of Object.entries(keys)) {
    paths[name] = join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-f', paths[name]]);
  }
  const socket = join(dir, 'agent.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    dir,
    keys: paths,
    socket,
    async close(): Promise<void> {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The message of the ConfigError `run` throws; any other outcome fails the test. */
export function configError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
