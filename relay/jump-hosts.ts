/**
 * Jump hosts (OpenSSH's ProxyJump) as configuration: parsing `[user@]host[:port]` hop lists, and
 * turning each host's named hops into the ordered chain of hop hosts the pool connects through.
 * Everything here runs once at startup; a bad chain is a ConfigError that names the host.
 *
 * Semantics, as OpenSSH's `-J a,b`: connect to `a`, through it to `b`, through `b` to the target.
 * The first hop's own jump list is followed too (a bastion that is itself behind another one);
 * the later hops are reached through the hop before them, so their own jump lists are not used.
 */
import { ConfigError } from './config-error.ts';
import type { HostConfig } from './config.ts';

/** The longest chain of hops to one host; OpenSSH has no limit, but a longer chain is a mistake. */
export const MAX_JUMP_HOPS = 8;
const DEFAULT_PORT = 22;

export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
  /** The hop as written, for messages. */
  text: string;
}

// Names and addresses that can only mean a host: no blanks, quotes, shell or control characters.
const HOST_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/;
const IPV6_RE = /^[0-9A-Fa-f:.]{2,45}$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

function parsePort(text: string, hop: string, where: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new ConfigError(`${where}: the port in jump hop "${hop}" must be a number from 1 to 65535.`);
  }
  return Number(text);
}

/** One hop: `[user@]host[:port]`, `[user@][v6addr][:port]` or `ssh://[user@]host[:port]`. */
function parseHop(raw: string, where: string): JumpSpec {
  const hop = raw.trim();
  const shown = JSON.stringify(hop.slice(0, 80));
  if (hop === '') throw new ConfigError(`${where}: a jump list has an empty hop (two commas, or a comma at an end).`);
  let rest = hop.startsWith('ssh://') ? hop.slice('ssh://'.length) : hop;
  const spec: JumpSpec = { host: '', text: hop };
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const user = rest.slice(0, at);
    if (!USER_RE.test(user)) throw new ConfigError(`${where}: jump hop ${shown} has an unusable user name (letters, digits, ".", "_", "-").`);
    spec.user = user;
    rest = rest.slice(at + 1);
  }
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    const address = bracketed[1] ?? '';
    if (!IPV6_RE.test(address)) throw new ConfigError(`${where}: jump hop ${shown} has an unusable address in brackets.`);
    spec.host = address;
    if (bracketed[2] !== undefined) spec.port = parsePort(bracketed[2], hop, where);
    return spec;
  }
  const colon = rest.indexOf(':');
  const host = colon >= 0 ? rest.slice(0, colon) : rest;
  if (colon >= 0) spec.port = parsePort(rest.slice(colon + 1), hop, where);
  if (!HOST_RE.test(host)) {
    throw new ConfigError(`${where}: jump hop ${shown} does not name a host (letters, digits, ".", "_", "-"; IPv6 addresses in brackets).`);
  }
  spec.host = host;
  return spec;
}

/**
 * OpenSSH's ProxyJump value: comma-separated hops, first hop first, or `none` (no jump). Returns
 * an empty list for `none`.
 */
export function parseProxyJump(value: string, where: string): JumpSpec[] {
  const trimmed = value.trim();
  if (trimmed.toLowerCase() === 'none') return [];
  if (trimmed.length > 4096) throw new ConfigError(`${where}: the jump list is too long.`);
  const hops = trimmed.split(',').map((hop) => parseHop(hop, where));
  if (hops.length > MAX_JUMP_HOPS) throw new ConfigError(`${where}: ${hops.length} jump hops; at most ${MAX_JUMP_HOPS} are allowed.`);
  return hops;
}

/**
 * Which configured host a `proxy_jump` hop means: the host of that name, else the one host with
 * that address and port (and user, when the hop gives one). A hop that is no configured host is
 * refused: each hop needs its own login and host key settings, which only a host entry carries.
 */
export function resolveJumpSpec(spec: JumpSpec, hosts: ReadonlyMap<string, HostConfig>, where: string): string {
  const byName = hosts.get(spec.host);
  if (byName) {
    const differs = (spec.user !== undefined && spec.user !== byName.username) || (spec.port !== undefined && spec.port !== byName.port);
    if (differs) {
      throw new ConfigError(
        `${where}: jump hop "${spec.text}" names host "${byName.name}" but gives another user or port than its entry (${byName.username}@${byName.address}:${byName.port}); name the host alone, or fix its entry.`,
      );
    }
    return byName.name;
  }
  const port = spec.port ?? DEFAULT_PORT;
  const matching = [...hosts.values()].filter(
    (host) => host.address === spec.host && host.port === port && (spec.user === undefined || spec.user === host.username),
  );
  if (matching.length === 1 && matching[0]) return matching[0].name;
  if (matching.length > 1) {
    throw new ConfigError(`${where}: jump hop "${spec.text}" matches several hosts (${matching.map((h) => h.name).join(', ')}); name one of them in jump.`);
  }
  throw new ConfigError(
    `${where}: jump hop "${spec.text}" is not a host in this config. Add it as a host (its user, its key or agent, its host key settings; jump_only: true keeps it out of the host list) and name it in jump.`,
  );
}

/**
 * The chain of hop hosts in front of `name`, first hop first, following the first hop's own jump
 * list. Refuses unknown names, a host in its own chain (a cycle) and chains over MAX_JUMP_HOPS.
 */
export function jumpChain(
  name: string,
  jumpNames: ReadonlyMap<string, readonly string[]>,
  hosts: ReadonlyMap<string, HostConfig>,
  where: (host: string) => string,
): HostConfig[] {
  const walk = (current: string, path: string[]): string[] => {
    const names = jumpNames.get(current) ?? [];
    if (names.length === 0) return [];
    const [first, ...rest] = names;
    const chain: string[] = [];
    for (const hop of names) {
      if (!hosts.has(hop)) throw new ConfigError(`${where(current)}: jump names "${hop}", which is not a host in this config.`);
    }
    if (first !== undefined) {
      if (path.includes(first)) throw new ConfigError(`${where(name)}: the jump chain loops (${[...path, first].join(' > ')}).`);
      chain.push(...walk(first, [...path, first]), first);
    }
    chain.push(...rest);
    return chain;
  };
  const chain = walk(name, [name]);
  const seen = new Set<string>([name]);
  for (const hop of chain) {
    if (seen.has(hop)) throw new ConfigError(`${where(name)}: the jump chain ${[...chain, name].join(' > ')} passes "${hop}" twice.`);
    seen.add(hop);
  }
  if (chain.length > MAX_JUMP_HOPS) {
    throw new ConfigError(`${where(name)}: the jump chain ${[...chain, name].join(' > ')} has ${chain.length} hops; at most ${MAX_JUMP_HOPS} are allowed.`);
  }
  return chain.map((hop) => {
    const host = hosts.get(hop);
    if (!host) throw new ConfigError(`${where(name)}: jump names "${hop}", which is not a host in this config.`);
    // A hop is connected as itself; its own chain is already in front of it in this one.
    const { jump: _ownChain, ...alone } = host;
    return alone;
  });
}

/**
 * Stdio mode's SSH_PROXY_JUMP: the hops of the single host, each logged in to with the host's own
 * key, password or agent and checked against the same known_hosts (strictness as the host's;
 * SSH_HOST_KEY_FINGERPRINT pins the target only). A hop without a user logs in as SSH_USERNAME.
 */
export function stdioJumpHops(value: string, target: HostConfig): HostConfig[] {
  return parseProxyJump(value, 'SSH_PROXY_JUMP').map((spec) => ({
    ...target,
    name: spec.text,
    address: spec.host,
    port: spec.port ?? DEFAULT_PORT,
    username: spec.user ?? target.username,
    hostKeyFingerprints: [],
    labels: {},
    readOnly: true,
    proxmox: false,
    readyShell: false,
    maxConnections: 1,
    jump: undefined,
  }));
}
