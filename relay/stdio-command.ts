/**
 * `mcp-remote-exec` with no arguments: an MCP server over stdio, configured like the seed
 * (I_ACCEPT_RISKS, HOST, SSH_* … from the environment or ./.env, or a relay config file). SSH
 * runs in this process; stdout carries only MCP messages, everything else goes to stderr.
 *
 * Like the seed it checks its hosts before serving, so a wrong key, password or host key is a
 * startup error with the fix in it rather than a failure on the first tool call.
 */
import type { McpRequestContext, McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeError } from '../shared/errors.ts';
import { buildMcpServer } from '../shared/mcp-server.ts';
import { VERSION } from '../shared/version.ts';
import { ConfigError, loadEnvironment, loadHostsConfig, type RelayHostsConfig } from './config.ts';
import { classifyCommand } from './shell/classifier.ts';
import { LocalExecutor, type LocalImageKit } from './local-executor.ts';
import { FileTransferStore } from './imagekit-store.ts';
import { ImageKitConfigError, readImageKitConfig, type ImageKitConfig } from '../shared/imagekit/config.ts';
import { applyLogLevel, log } from './log.ts';
import { RelayOperations } from './operations.ts';
import { RISK_NOTICE, risksAccepted } from './risk.ts';
import { exitWhenDrained } from './exit-drained.ts';
import { StartupError } from './startup-error.ts';
import { readJobSettings, readStdioSettings } from './tool-settings.ts';
import { FileJobStore } from './job-files.ts';
import { LocalJobs } from './local-jobs.ts';

const STARTUP_CHECK_TIMEOUT_MS = 15_000;

export const SERVER_INSTRUCTIONS =
  'Runs commands on the SSH hosts configured for this server. Call ssh_list_hosts to learn their names. ' +
  'Commands run non-interactively (no stdin; no terminal unless pty: true) with a timeout; prefer commands that finish on their own.';

export const NO_HOST_MESSAGE =
  'No SSH host configuration found. Set HOST, SSH_USERNAME and SSH_KEY (or SSH_PASSWORD) in the environment or in .env ' +
  '(in the directory the server starts in), or pass --config FILE listing hosts.';

/** Connect to every host once. Wrong credentials and untrusted keys stop the start; so does an unreachable single host. */
async function checkHosts(operations: RelayOperations, config: RelayHostsConfig): Promise<void> {
  const probe = await operations.run(
    { op: 'probe', hosts: [], timeoutMs: STARTUP_CHECK_TIMEOUT_MS },
    () => undefined,
    AbortSignal.timeout(STARTUP_CHECK_TIMEOUT_MS + 1000),
  );
  if (!probe.ok || probe.value.op !== 'probe') throw new StartupError('The startup check of the SSH hosts failed unexpectedly.');
  const problems: string[] = [];
  for (const status of probe.value.hosts) {
    if (status.reachable) continue;
    const error = { code: status.code ?? 'ssh_error', message: status.message ?? 'unknown failure' } as const;
    const fatal = config.hosts.length === 1 || error.code !== 'host_unreachable';
    if (fatal) problems.push(describeError(error));
    else log('warn', 'host unreachable at startup; its tools will fail until it is back', { host: status.name, code: error.code });
  }
  if (problems.length > 0) throw new StartupError(problems.join('\n\n'));
}

export async function runStdio(args: string[]): Promise<number | 'running'> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'env-file': { type: 'string' } }, strict: true });
  const env = loadEnvironment(process.env, resolve(values['env-file'] ?? '.env'));
  applyLogLevel(env);
  if (!risksAccepted(env)) throw new StartupError(`Risks not accepted. ${RISK_NOTICE}`);
  const settings = readStdioSettings(env);
  const jobSettings = readJobSettings(env);
  const config = loadHostsConfig({ RELAY_ID: 'stdio', ...env }, values.config);
  if (config.hosts.length === 0) throw new StartupError(NO_HOST_MESSAGE);
  // Said once, so nothing in an imported ssh_config is silently left out.
  for (const notice of config.notices ?? []) log('warn', notice, { source: config.source });
  let imagekitConfig: ImageKitConfig | null;
  try {
    imagekitConfig = readImageKitConfig(env);
  } catch (error) {
    if (error instanceof ImageKitConfigError) throw new StartupError(error.message);
    throw error;
  }

  const operations = new RelayOperations(config);
  try {
    await checkHosts(operations, config);
  } catch (error) {
    operations.close();
    throw error;
  }

  let imagekit: LocalImageKit | null = null;
  let store: FileTransferStore | null = null;
  if (imagekitConfig) {
    // Loaded only when ImageKit is on: most stdio users never need the SDK.
    const { ImageKitService } = await import('../shared/imagekit/service.ts');
    const service = new ImageKitService(imagekitConfig);
    store = new FileTransferStore(config.stateDir);
    store.startSweeping(service);
    imagekit = { config: imagekitConfig, service, store, maxFileSize: settings.maxFileSize };
  }
  let jobStore: FileJobStore;
  try {
    jobStore = new FileJobStore(config.stateDir);
  } catch (error) {
    operations.close();
    store?.stop();
    throw new StartupError(
      `The background job records cannot be kept in ${config.stateDir}: ${error instanceof Error ? error.message : String(error)} (MCP_REMOTE_EXEC_STATE_DIR sets the state directory).`,
    );
  }
  const jobs = new LocalJobs(operations, jobStore, jobSettings);
  jobs.startChecking();
  // The command classifier offers ssh_check_command here (the class only: stdio has no team policy).
  // Hosts whose config asks for the user's own confirmation of some command classes (relay/local-confirm.ts).
  const confirmRules = new Map(config.hosts.flatMap((host) => (host.confirm ? [[host.name, host.confirm] as const] : [])));
  const executor = new LocalExecutor(operations, imagekit, jobs, classifyCommand, confirmRules);
  const toolSettings = { ...settings, transfersViaImageKit: imagekit !== null };
  // As in the seed, the Proxmox tools are there only when a host is a Proxmox VE server.
  const proxmox = config.hosts.some((host) => host.proxmox);
  const testTools = env.MCP_REMOTE_EXEC_TEST_TOOLS === 'true';
  // serveStdio calls this once per connection (plus once for a discarded discovery probe): it
  // only registers tools; the host checks and the ImageKit sweeper above run once, before it.
  const factory = (ctx: McpRequestContext): McpServer =>
    buildMcpServer({ instructions: SERVER_INSTRUCTIONS, executor, settings: toolSettings, era: ctx.era, proxmox, imagekit: imagekit !== null, testTools });
  const served = serveStdio(factory, { onerror: (error) => log('warn', 'MCP stdio error', { error: error.message }) });
  let closing = false;
  const close = (reason: string): void => {
    if (closing) return;
    closing = true;
    log('info', 'stdio server stopping', { reason });
    store?.stop();
    jobs.stop();
    operations.close();
    void served.close().finally(() => exitWhenDrained(0));
  };
  process.stdin.once('end', () => close('stdin ended'));
  process.on('SIGTERM', () => close('SIGTERM'));
  process.on('SIGINT', () => close('SIGINT'));
  log('info', 'stdio server ready', { version: VERSION, hosts: config.hosts.map((host) => host.name), source: config.source });
  return 'running';
}
