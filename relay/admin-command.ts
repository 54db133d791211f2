/**
 * `mcp-remote-exec admin`: the Worker's admin API from a terminal (users, relays, policy, audit). It
 * signs in with an admin's own user name and password, read from the environment or a file,
 * never from the command line (which other users of the machine can see).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { jsonSafeText, safeResultText, visibleText } from '../shared/visible-text.ts';
import { ConfigError } from './config-error.ts';

export const ADMIN_USAGE = `Usage: mcp-remote-exec admin [--url URL] COMMAND

Users:
  users                              list users
  users add NAME [--group G]...      create a user; prints their one-time password
  users disable NAME                 disable (their tokens are revoked at once)
  users enable NAME
  users reset-password NAME          prints a new one-time password; revokes their tokens
  users groups NAME [--group G]...   set the user's groups
  users delete NAME
Relays:
  relays                             list relays: credential, online, version, last seen, hosts
  relays add NAME                    issue relay NAME its own token (printed once)
  relays revoke NAME                 revoke it: its connection closes, its hosts disappear
Policy (keep it in version control):
  policy get                         print the policy as JSON
  policy set FILE                    replace the policy with FILE (- for stdin); checked first
Freeze (stop every new call at once):
  freeze                             show what is frozen
  freeze deployment|user NAME|relay NAME [--cancel-jobs]
                                     refuse every new call of that scope; --cancel-jobs also
                                     cancels its running jobs and reports how many
  unfreeze deployment|user NAME|relay NAME
Approvals (commands held by the policy's command rules):
  approvals [list]                   list what waits: who, client, host, class, rule, the exact command
  approvals approve ID               approve it (the requester then runs it once, within 15 minutes)
  approvals reject ID
Audit:
  audit [--user U] [--host H] [--tool T] [--outcome ok|error|denied|started|checked]
        [--since TIME] [--until TIME] [--limit N] [--jsonl]

Environment: MCP_REMOTE_EXEC_URL (or RELAY_URL, or --url), MCP_REMOTE_EXEC_ADMIN_USER (default
admin), MCP_REMOTE_EXEC_ADMIN_PASSWORD or MCP_REMOTE_EXEC_ADMIN_PASSWORD_FILE.`;

interface Reply {
  status: number;
  /** The policy's revision, on policy answers. */
  revision: string | null;
  body: Record<string, unknown>;
  text: string;
}

function settings(values: { url?: string | undefined }, env: NodeJS.ProcessEnv): { url: string; authorization: string } {
  const url = (values.url ?? env.MCP_REMOTE_EXEC_URL ?? env.RELAY_URL ?? '').replace(/\/+$/, '');
  if (!url) throw new ConfigError('No Worker URL: pass --url or set MCP_REMOTE_EXEC_URL (e.g. https://mcp.example.com).');
  const user = env.MCP_REMOTE_EXEC_ADMIN_USER || 'admin';
  const password = env.MCP_REMOTE_EXEC_ADMIN_PASSWORD_FILE
    ? readFileSync(env.MCP_REMOTE_EXEC_ADMIN_PASSWORD_FILE, 'utf8').replace(/\r?\n$/, '')
    : env.MCP_REMOTE_EXEC_ADMIN_PASSWORD;
  if (!password) throw new ConfigError('No admin password: set MCP_REMOTE_EXEC_ADMIN_PASSWORD or MCP_REMOTE_EXEC_ADMIN_PASSWORD_FILE.');
  return { url, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

async function request(target: { url: string; authorization: string }, method: string, path: string, body?: unknown): Promise<Reply> {
  const response = await fetch(`${target.url}/admin/api/${path}`, {
    method,
    headers: { Authorization: target.authorization, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null) parsed = value as Record<string, unknown>;
  } catch {
    // JSONL: printed as it came.
  }
  return { status: response.status, revision: response.headers.get('Policy-Revision'), body: parsed, text };
}

interface FreezeLine {
  deployment: { by: string; at: string } | null;
  users: Array<{ name: string; by: string; at: string }>;
  relays: Array<{ name: string; by: string; at: string }>;
}

function formatFreeze(state: FreezeLine): string {
  const lines = [
    ...(state.deployment ? [`deployment frozen by ${state.deployment.by} at ${state.deployment.at}`] : []),
    ...state.users.map((user) => `user ${user.name} frozen by ${user.by} at ${user.at}`),
    ...state.relays.map((relay) => `relay ${relay.name} frozen by ${relay.by} at ${relay.at}`),
  ];
  return lines.length > 0 ? lines.join('\n') : 'Nothing is frozen.';
}

interface RelayLine {
  name: string;
  credential: string;
  online: boolean;
  revokedAt?: string;
  version: string | null;
  lastConnectedAt?: string;
  hosts: Array<{ name: string }>;
}

function formatRelays(relays: RelayLine[]): string {
  if (relays.length === 0) return 'No relays yet. Issue one a credential with: relays add NAME';
  return relays
    .map((relay) => {
      const state = relay.revokedAt ? `revoked ${relay.revokedAt}` : relay.online ? 'online' : 'offline';
      const seen = relay.lastConnectedAt ? `, last connected ${relay.lastConnectedAt}` : ', never connected';
      const hosts = relay.hosts.length > 0 ? `  hosts: ${relay.hosts.map((host) => host.name).join(', ')}` : '';
      return `${relay.name} [${state}] ${relay.credential} credential${relay.version ? `, version ${relay.version}` : ''}${seen}${hosts}`;
    })
    .join('\n');
}

interface ApprovalLine {
  id: string;
  requester: string;
  client: string | null;
  host: string;
  tool: string;
  class: string;
  reasons: string[];
  rule: { index: number; note: string | null };
  command: string;
  created_at: string;
  expires_at: string;
}

/** Each approval on a few lines; the command last, as typed (made safe for the terminal by show). */
function formatApprovals(approvals: ApprovalLine[]): string {
  if (approvals.length === 0) return 'Nothing is waiting for approval.';
  return approvals
    .map(
      (item) =>
        `${item.id}  ${item.requester} via ${item.client ?? 'unknown client'} on ${item.host} (${item.tool}), ${item.class}, asked ${item.created_at}, expires ${item.expires_at}
  rule ${item.rule.index}${item.rule.note ? `: ${item.rule.note}` : ''}${item.reasons.length > 0 ? `\n  why: ${item.reasons.join('; ')}` : ''}
  command: ${item.command}`,
    )
    .join('\n');
}

function usageError(message: string): never {
  throw new ConfigError(`${message}\n\n${ADMIN_USAGE}`);
}

/** Runs one admin command; returns the exit code (0 done, 1 refused by the Worker). */
export async function runAdmin(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      group: { type: 'string', multiple: true },
      user: { type: 'string' },
      host: { type: 'string' },
      tool: { type: 'string' },
      outcome: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      jsonl: { type: 'boolean' },
      'cancel-jobs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${ADMIN_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const [area, action, name, extra] = positionals;
  const target = settings(values, env);
  const show = (reply: Reply, okStatus: number[], print: (body: Record<string, unknown>) => string): number => {
    if (!okStatus.includes(reply.status)) {
      process.stderr.write(
        `${visibleText(`mcp-remote-exec admin: ${reply.status} ${String(reply.body.error ?? '')}: ${String(reply.body.message ?? reply.text)}`)}\n`,
      );
      return 1;
    }
    // What users typed (commands in the audit log, names) reaches the admin's terminal as data, never as control sequences.
    process.stdout.write(`${safeResultText(print(reply.body), true)}\n`);
    return 0;
  };
  const json = (body: unknown): string => JSON.stringify(body, null, 2);
  const user = (): string => name ?? usageError(`users ${action ?? ''} needs a user name.`);

  if (area === 'users') {
    switch (action) {
      case undefined:
        return show(await request(target, 'GET', 'users'), [200], (body) =>
          (body.users as Array<{ username: string; groups: string[]; disabled: boolean; bootstrap?: boolean }>)
            .map(
              (entry) =>
                `${entry.username}${entry.bootstrap ? ' (deployment admin account)' : ''}${entry.disabled ? ' [disabled]' : ''}${entry.groups.length > 0 ? `  groups: ${entry.groups.join(', ')}` : ''}`,
            )
            .join('\n'),
        );
      case 'add':
        return show(
          await request(target, 'POST', 'users', { username: user(), groups: values.group ?? [] }),
          [201],
          (body) => `Created ${user()}. One-time password (give it over a private channel; it is not shown again):\n${String(body.password)}`,
        );
      case 'disable':
      case 'enable':
        return show(await request(target, 'PATCH', `users/${encodeURIComponent(user())}`, { disabled: action === 'disable' }), [200], (body) =>
          action === 'disable' ? `Disabled ${user()}; ${String(body.grantsRevoked)} authorization(s) revoked.` : `Enabled ${user()}.`,
        );
      case 'reset-password':
        return show(
          await request(target, 'PATCH', `users/${encodeURIComponent(user())}`, { resetPassword: true }),
          [200],
          (body) => `New one-time password for ${user()} (their old sessions were revoked):\n${String(body.password)}`,
        );
      case 'groups':
        return show(
          await request(target, 'PATCH', `users/${encodeURIComponent(user())}`, { groups: values.group ?? [] }),
          [200],
          () => `Groups of ${user()}: ${(values.group ?? []).join(', ') || '(none)'}.`,
        );
      case 'delete':
        return show(await request(target, 'DELETE', `users/${encodeURIComponent(user())}`), [200], () => `Deleted ${user()}.`);
      default:
        return usageError(`Unknown users command "${action}".`);
    }
  }
  if (area === 'relays') {
    const relay = (): string => name ?? usageError(`relays ${action ?? ''} needs a relay name.`);
    switch (action) {
      case undefined:
      case 'list':
        return show(await request(target, 'GET', 'relays'), [200], (body) => formatRelays(body.relays as RelayLine[]));
      case 'add':
        return show(
          await request(target, 'POST', 'relays', { name: relay() }),
          [201],
          (body) => `Issued a credential to relay ${relay()}. ${String(body.note)}
RELAY_TOKEN=${String(body.token)}`,
        );
      case 'revoke':
        return show(
          await request(target, 'DELETE', `relays/${encodeURIComponent(relay())}`),
          [200],
          () => `Revoked relay ${relay()}: its connection was closed and its hosts are no longer offered.`,
        );
      default:
        return usageError(`Unknown relays command "${action}".`);
    }
  }
  if (area === 'policy') {
    if (action === 'get') {
      const reply = await request(target, 'GET', 'policy');
      if (reply.revision !== null) process.stderr.write(`Policy revision ${reply.revision}\n`);
      return show(reply, [200], json);
    }
    if (action === 'set') {
      const file = name ?? usageError('policy set needs a FILE (or - for stdin).');
      const text = readFileSync(file === '-' ? 0 : file, 'utf8');
      try {
        JSON.parse(text);
      } catch (error) {
        throw new ConfigError(`${file} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      const reply = await request(target, 'PUT', 'policy', text);
      return show(reply, [200], (body) => {
        const rules = Array.isArray(body.commandRules) ? `, ${body.commandRules.length} command rule(s)` : '';
        return `Policy replaced: ${(body.grants as unknown[]).length} grant(s)${rules}; revision ${reply.revision ?? '?'}.`;
      });
    }
    return usageError(`Unknown policy command "${action ?? ''}".`);
  }
  if (area === 'freeze' || area === 'unfreeze') {
    if (area === 'freeze' && action === undefined)
      return show(await request(target, 'GET', 'freeze'), [200], (body) => formatFreeze(body.freeze as FreezeLine));
    if (action !== 'deployment' && action !== 'user' && action !== 'relay') return usageError(`${area} needs a scope: deployment, user NAME or relay NAME.`);
    if (action !== 'deployment' && name === undefined) return usageError(`${area} ${action} needs a ${action} name.`);
    if (action === 'deployment' && name !== undefined) return usageError(`${area} deployment takes no name.`);
    if (area === 'unfreeze' && values['cancel-jobs']) return usageError('--cancel-jobs belongs to freeze.');
    const body = { scope: action, ...(name !== undefined ? { name } : {}), ...(area === 'freeze' ? { cancelJobs: Boolean(values['cancel-jobs']) } : {}) };
    return show(await request(target, 'POST', area, body), [200], (reply) => {
      const jobs = reply.jobs as { found: number; cancelled: number; failed: string[] } | null | undefined;
      const cancelled = jobs
        ? `\nRunning jobs: ${jobs.found} found, ${jobs.cancelled} cancelled${jobs.failed.length > 0 ? `; not cancelled: ${jobs.failed.join(', ')}` : ''}.`
        : '';
      return `${area === 'freeze' ? 'Frozen' : 'Unfrozen'}: ${action}${name !== undefined ? ` ${name}` : ''}.${cancelled}\n${formatFreeze(reply.freeze as FreezeLine)}`;
    });
  }
  if (area === 'approvals') {
    switch (action) {
      case undefined:
      case 'list':
        return show(await request(target, 'GET', 'approvals'), [200], (body) => formatApprovals(body.approvals as ApprovalLine[]));
      case 'approve':
      case 'reject': {
        const id = name ?? usageError(`approvals ${action} needs an approval id.`);
        return show(
          await request(target, 'POST', `approvals/${encodeURIComponent(id)}/${action}`),
          [200],
          (body) => `${action === 'approve' ? 'Approved' : 'Rejected'} ${id}: ${formatApprovals([(body as { approval: ApprovalLine }).approval])}`,
        );
      }
      default:
        return usageError(`Unknown approvals command "${action}".`);
    }
  }
  if (area === 'audit') {
    if (action !== undefined || extra !== undefined) usageError('audit takes options only.');
    const query = new URLSearchParams();
    for (const key of ['user', 'host', 'tool', 'outcome', 'since', 'until', 'limit'] as const) {
      const value = values[key];
      if (value !== undefined) query.set(key, value);
    }
    if (values.jsonl) query.set('format', 'jsonl');
    const reply = await request(target, 'GET', `audit?${query.toString()}`);
    if (values.jsonl && reply.status === 200) {
      process.stdout.write(jsonSafeText(reply.text));
      return 0;
    }
    return show(
      reply,
      [200],
      (body) =>
        (body.entries as Array<Record<string, unknown>>)
          .map(
            (entry) =>
              `${String(entry.time)} ${String(entry.user)} ${String(entry.tool)}${entry.host ? ` on ${String(entry.host)}` : ''}${entry.target ? `: ${String(entry.target)}` : ''} → ${String(entry.outcome)}${entry.code ? ` (${String(entry.code)})` : ''}${entry.exitCode !== null && entry.exitCode !== undefined ? `, exit ${String(entry.exitCode)}` : ''}`,
          )
          .join('\n') || 'No audit entries match.',
    );
  }
  return usageError(`Unknown admin command "${area}".`);
}
