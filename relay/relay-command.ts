/**
 * `mcp-remote-exec relay`: the relay daemon. It connects out to the Worker and listens on no
 * port. Settings come from the environment or ./.env:
 *   I_ACCEPT_RISKS=true      required
 *   RELAY_URL                the Worker's URL, e.g. https://mcp.example.com (or --url)
 *   RELAY_TOKEN / RELAY_TOKEN_FILE   the relay's secret (never pass it on the command line)
 *   RELAY_ID                 name shown to users (default: the name in its issued token, else
 *                            this machine's host name)
 *   hosts: HOST, SSH_* like the seed, or MCP_REMOTE_EXEC_CONFIG / --config FILE
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadEnvironment, loadHostsConfig, NO_HOSTS_HINT, type RelayHostsConfig } from './config.ts';
import { relayNameInToken } from '../shared/relay-credential.ts';
import { HubConnection } from './hub-connection.ts';
import { heartbeatIntervalMs } from '../shared/protocol.ts';
import { applyLogLevel, log } from './log.ts';
import { RelayOperations } from './operations.ts';
import { RISK_NOTICE, risksAccepted } from './risk.ts';
import { VERSION } from '../shared/version.ts';
import { RELAY_USAGE } from './relay-usage.ts';
import { exitWhenDrained } from './exit-drained.ts';

const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

function readToken(env: NodeJS.ProcessEnv): string {
  if (env.RELAY_TOKEN_FILE) {
    const path = resolve(env.RELAY_TOKEN_FILE);
    if (!existsSync(path)) throw new ConfigError(`RELAY_TOKEN_FILE ${path} does not exist.`);
    return readFileSync(path, 'utf8').trim();
  }
  const token = env.RELAY_TOKEN?.trim();
  if (!token)
    throw new ConfigError(
      'No relay token: set RELAY_TOKEN or RELAY_TOKEN_FILE (a token from "mcp-remote-exec admin relays add NAME", or the one the Worker\'s RELAY_TOKEN_HASH was made from).',
    );
  return token;
}

/** A token issued to one relay names it: the relay goes by that name, and a different RELAY_ID is a mistake to say now. */
function relayIdFor(config: RelayHostsConfig, token: string): string {
  const issuedTo = relayNameInToken(token);
  if (!issuedTo) return config.relayId;
  if (config.relayIdExplicit && config.relayId !== issuedTo) {
    throw new ConfigError(
      `The relay token was issued to relay "${issuedTo}", but RELAY_ID / relay_id says "${config.relayId}". Use the same name, or leave RELAY_ID unset.`,
    );
  }
  return issuedTo;
}

/** Starts the daemon; returns an exit code only when it cannot start (it otherwise runs until signalled). */
export function runRelay(args: string[]): number | 'running' {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      'env-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${RELAY_USAGE}\n`);
    return 0;
  }
  const env = loadEnvironment(process.env, resolve(values['env-file'] ?? '.env'));
  applyLogLevel(env);
  if (!risksAccepted(env)) {
    process.stderr.write(`Refusing to start: ${RISK_NOTICE}\n`);
    return 2;
  }
  const url = values.url ?? env.RELAY_URL;
  if (!url) throw new ConfigError('No Worker URL: set RELAY_URL (e.g. https://mcp.example.com) or pass --url.');
  const token = readToken(env);
  const loaded = loadHostsConfig(env, values.config);
  const config = { ...loaded, relayId: relayIdFor(loaded, token) };
  if (config.hosts.length === 0) log('warn', NO_HOSTS_HINT);
  // Said once, so nothing in an imported ssh_config is silently left out.
  for (const notice of config.notices ?? []) log('warn', notice, { source: config.source });
  log('info', 'relay starting', { version: VERSION, relayId: config.relayId, hosts: config.hosts.map((h) => h.name), source: config.source });

  const operations = new RelayOperations(config);
  const connection = new HubConnection({
    url,
    token,
    relayId: config.relayId,
    operations,
    // Tests shorten it (with the Worker's RELAY_HEARTBEAT_MS) so half-open sockets are found in seconds.
    heartbeatMs: heartbeatIntervalMs(env.RELAY_HEARTBEAT_MS),
  });
  connection.start();
  // In the background: a dead host must not hold up the relay's start.
  void operations.checkHostKeys();

  const graceSeconds = Number(env.RELAY_SHUTDOWN_GRACE_SECONDS);
  const graceMs = env.RELAY_SHUTDOWN_GRACE_SECONDS && Number.isFinite(graceSeconds) && graceSeconds >= 0 ? graceSeconds * 1000 : DEFAULT_SHUTDOWN_GRACE_MS;
  let shuttingDown = false;
  const stop = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log('info', 'shutting down', { signal, graceMs });
    connection.shutdown(graceMs).then(
      () => void exitWhenDrained(0),
      (error: unknown) => {
        log('error', 'shutdown failed', { error: String(error) });
        void exitWhenDrained(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return 'running';
}
