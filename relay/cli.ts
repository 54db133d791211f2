/**
 * The `mcp-remote-exec` command.
 *   mcp-remote-exec            MCP server over stdio (Claude Desktop), configured like the seed
 *   mcp-remote-exec relay      the relay daemon for the Worker
 *   mcp-remote-exec --help | --version
 */
import { VERSION } from '../shared/version.ts';
import { ConfigError } from './config-error.ts';
import { exitWhenDrained } from './exit-drained.ts';
import { RELAY_USAGE } from './relay-usage.ts';
import { StartupError } from './startup-error.ts';

export const USAGE = `mcp-remote-exec ${VERSION}: SSH access for AI assistants over MCP.

Usage:
  mcp-remote-exec [--config FILE] [--env-file FILE]
      Serve MCP over stdio (for Claude Desktop and other local clients). SSH runs in this process.
  mcp-remote-exec relay [--config FILE] [--url URL] [--env-file FILE]
      Run the relay daemon that connects out to the mcp-remote-exec Worker.
  mcp-remote-exec admin [--url URL] COMMAND
      Manage users, policy and the audit log of a Worker (mcp-remote-exec admin --help).
  mcp-remote-exec --help | -h      Show this help.
  mcp-remote-exec --version | -v   Print the version.

Configuration (environment or ./.env, as in the original mcp-remote-exec):
  I_ACCEPT_RISKS=true       required: you accept that an AI may run commands on your hosts
  HOST, SSH_PORT (22), SSH_USERNAME, SSH_KEY or SSH_PASSWORD, SSH_KEY_PASSPHRASE
  SSH_AUTH_SOCK: a running ssh-agent, used when neither SSH_KEY nor SSH_PASSWORD is set
  SSH_STRICT_HOST_KEY_CHECKING (true): false accepts new host keys; changed keys are always refused
  SSH_PROXY_JUMP: jump hosts in OpenSSH's -J syntax (user@host:port,host2), logged in to like HOST
  CHARACTER_LIMIT (25000), TIMEOUT (30), MAX_FILE_SIZE (10485760)
  --config FILE / MCP_REMOTE_EXEC_CONFIG: a JSON file listing several hosts (see relay.config.example.json)

${RELAY_USAGE}`;

/** Runs the command; exits the process unless a server was started and keeps running. */
export async function runCli(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  let outcome: number | 'running';
  try {
    if (first === '--help' || first === '-h') {
      process.stdout.write(`${USAGE}\n`);
      outcome = 0;
    } else if (first === '--version' || first === '-v') {
      process.stdout.write(`${VERSION}\n`);
      outcome = 0;
    } else if (first === 'relay') {
      // Each mode loads only its own code: the relay daemon never holds the MCP server in memory.
      const { runRelay } = await import('./relay-command.ts');
      outcome = runRelay(rest);
    } else if (first === 'admin') {
      const { runAdmin } = await import('./admin-command.ts');
      outcome = await runAdmin(rest);
    } else if (first === undefined || first.startsWith('--')) {
      const { runStdio } = await import('./stdio-command.ts');
      outcome = await runStdio(argv);
    } else {
      process.stderr.write(`mcp-remote-exec: unknown command "${first}". Run mcp-remote-exec --help for usage.\n`);
      outcome = 2;
    }
  } catch (error) {
    if (error instanceof StartupError) {
      process.stderr.write(`mcp-remote-exec: cannot start.\n${error.message}\n`);
      outcome = 1;
    } else if (error instanceof ConfigError) {
      process.stderr.write(`mcp-remote-exec: configuration error: ${error.message}\n`);
      outcome = 2;
    } else if (error instanceof TypeError && 'code' in error && typeof error.code === 'string' && error.code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`mcp-remote-exec: ${error.message}. Run mcp-remote-exec --help for usage.\n`);
      outcome = 2;
    } else {
      throw error;
    }
  }
  if (outcome !== 'running') await exitWhenDrained(outcome);
}
