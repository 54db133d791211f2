/**
 * Relay hosts from an OpenSSH client config (~/.ssh/config), so that `ssh web1` and the relay agree
 * on where web1 is, who logs in, with which key, through which jump hosts and against which
 * known_hosts. Read with OpenSSH's rules: keywords case-insensitive, `keyword value` or
 * `keyword=value`, quotes, `Host` patterns with `*`, `?` and `!`, the first value obtained wins
 * (IdentityFile adds up), `Include` read in place.
 *
 * Only what the relay can honour is used: Host, HostName, User, Port, IdentityFile, ProxyJump,
 * UserKnownHostsFile, StrictHostKeyChecking. Every other directive that applies to an imported host
 * is reported once at startup as "ignored: <directive> (host web1)"; `Match` blocks are reported and
 * never evaluated, so nothing in the file is ever run (not `Match exec`, not ProxyCommand).
 *
 * Written here rather than taken from the `ssh-config` package: its compute() runs `Match exec`
 * commands and nslookup by default, and we need the unused directives listed, not applied.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { ConfigError } from './config-error.ts';
import type { HostEntry } from './config.ts';
import { globMatch, matchPatternList } from './host-keys.ts';
import { MAX_JUMP_HOPS, parseProxyJump } from './jump-hosts.ts';

/** One ssh_config file larger than this is refused: a real one is a few kilobytes. */
export const MAX_SSH_CONFIG_BYTES = 1024 * 1024;
const MAX_TOTAL_BYTES = 4 * MAX_SSH_CONFIG_BYTES;
/** OpenSSH's own limit on nested Include (READCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16;
const MAX_FILES = 256;
const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
/** Aliases hosts_from_ssh_config may select: each is resolved against every block, so this bounds start-up work too. */
export const MAX_IMPORTED_HOSTS = 512;

const USED = new Set(['hostname', 'user', 'port', 'identityfile', 'proxyjump', 'userknownhostsfile', 'stricthostkeychecking']);

interface Directive {
  /** Lowercased, for lookups. */
  keyword: string;
  /** As written, for messages. */
  written: string;
  args: string[];
  file: string;
  line: number;
}

interface Block {
  /** null: applies to every host (before any Host line, or an Include's head inside a Host block). */
  patterns: string[] | null;
  match: boolean;
  directives: Directive[];
}

export interface SshConfigImport {
  entries: HostEntry[];
  notices: string[];
}

/**
 * Split a line as OpenSSH's argv_split() does: blanks separate words, single and double quotes
 * group, a backslash escapes a quote, a blank or a backslash, and an unquoted `#` starting a word
 * ends the line.
 */
function splitWords(text: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i += 1;
    if (i >= text.length || text[i] === '#') break;
    let word = '';
    let quote: string | null = null;
    for (; i < text.length; i += 1) {
      const c = text[i] as string;
      if (quote === null && (c === ' ' || c === '\t')) break;
      if (c === '\\' && i + 1 < text.length && /[\\"' ]/.test(text[i + 1] as string)) {
        word += text[i + 1];
        i += 1;
      } else if (quote === null && (c === '"' || c === "'")) {
        quote = c;
      } else if (quote !== null && c === quote) {
        quote = null;
      } else {
        word += c;
      }
    }
    if (quote !== null) throw new ConfigError(`${where}: a quote is not closed.`);
    words.push(word);
  }
  return words;
}

/** `keyword value…` or `keyword=value…` (blanks around "=" allowed), as OpenSSH reads a line. */
function parseLine(raw: string, file: string, line: number): Directive | null {
  const where = `${file} line ${line}`;
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(raw)) throw new ConfigError(`${where}: the line has a control character.`);
  const text = raw.replace(/^[ \t]+/, '');
  if (text === '' || text.startsWith('#')) return null;
  const keyword = /^[^ \t=]+/.exec(text)?.[0] ?? '';
  // OpenSSH refuses an unknown option as a "Bad configuration option". Anything not shaped like a
  // keyword (a key or certificate that ended up in an Included folder, say) is refused here too,
  // naming the file and line but never echoing the text: the start-up notices go to the log.
  if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(keyword))
    throw new ConfigError(`${where}: this line does not start with an ssh_config keyword (is this file an ssh_config file?).`);
  const rest = text.slice(keyword.length).replace(/^[ \t]*=?[ \t]*/, '');
  return { keyword: keyword.toLowerCase(), written: keyword, args: splitWords(rest, where), file, line };
}

class Reader {
  readonly blocks: Block[] = [{ patterns: null, match: false, directives: [] }];
  readonly notices: string[] = [];
  private files = 0;
  private bytes = 0;

  read(path: string, depth: number, context: Block): void {
    if (depth > MAX_INCLUDE_DEPTH) throw new ConfigError(`${path}: Include nests deeper than ${MAX_INCLUDE_DEPTH} files (an Include loop?).`);
    this.files += 1;
    if (this.files > MAX_FILES) throw new ConfigError(`${path}: ssh_config includes more than ${MAX_FILES} files.`);
    let size: number;
    try {
      const stat = statSync(path);
      if (!stat.isFile()) throw new ConfigError(`${path} (ssh_config) is not a file.`);
      size = stat.size;
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`ssh_config file ${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (size > MAX_SSH_CONFIG_BYTES) throw new ConfigError(`ssh_config file ${path} is ${size} bytes; more than ${MAX_SSH_CONFIG_BYTES} is refused.`);
    this.bytes += size;
    if (this.bytes > MAX_TOTAL_BYTES) throw new ConfigError(`ssh_config files add up to more than ${MAX_TOTAL_BYTES} bytes (at ${path}).`);
    const text = readFileSync(path, 'utf8');
    let current = this.open(context.patterns, context.match);
    text.split(/\r?\n/).forEach((raw, index) => {
      const directive = parseLine(raw, path, index + 1);
      if (!directive) return;
      const where = `${path} line ${directive.line}`;
      if (directive.keyword === 'host') {
        if (directive.args.length === 0) throw new ConfigError(`${where}: Host needs at least one pattern.`);
        current = this.open(directive.args, false);
      } else if (directive.keyword === 'match') {
        this.notices.push(`ignored: Match block at ${where} (Match is not evaluated; none of its settings reach a relay host)`);
        current = this.open([], true);
      } else if (directive.keyword === 'include') {
        if (directive.args.length === 0) throw new ConfigError(`${where}: Include needs a file.`);
        for (const pattern of directive.args) {
          for (const included of this.expandInclude(pattern, where)) this.read(included, depth + 1, current);
        }
        // Lines after the Include belong to the block that held it again.
        current = this.open(current.patterns, current.match);
      } else {
        current.directives.push(directive);
      }
    });
  }

  private open(patterns: string[] | null, match: boolean): Block {
    const block: Block = { patterns, match, directives: [] };
    this.blocks.push(block);
    return block;
  }

  /** OpenSSH reads relative Include paths from ~/.ssh; wildcards are honoured in the file name. */
  private expandInclude(pattern: string, where: string): string[] {
    const expanded = pattern === '~' || pattern.startsWith('~/') ? join(homedir(), pattern.slice(1)) : pattern;
    const path = isAbsolute(expanded) ? expanded : join(homedir(), '.ssh', expanded);
    const dir = dirname(path);
    const name = basename(path);
    if (/[*?[]/.test(dir)) {
      this.notices.push(`ignored: Include ${pattern} at ${where} (wildcards are supported in the file name only)`);
      return [];
    }
    if (!/[*?]/.test(name)) return existsSync(path) ? [path] : [];
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    // As glob(3): sorted, and hidden files only when the pattern asks for them.
    return names
      .filter((entry) => (name.startsWith('.') || !entry.startsWith('.')) && globMatch(entry, name))
      .sort()
      .map((entry) => join(dir, entry));
  }
}

interface Settings {
  values: Map<string, string[]>;
  identityFiles: string[];
  ignored: string[];
}

/** ssh -G's view of `alias`: the first value of each directive from the blocks that match it. */
function settingsFor(blocks: Block[], alias: string): Settings {
  const name = alias.toLowerCase();
  const settings: Settings = { values: new Map(), identityFiles: [], ignored: [] };
  for (const block of blocks) {
    if (block.match) continue;
    if (block.patterns !== null && matchPatternList(name, block.patterns.join(',')) !== 1) continue;
    for (const directive of block.directives) {
      if (!USED.has(directive.keyword)) {
        if (!settings.ignored.some((seen) => seen.toLowerCase() === directive.keyword)) settings.ignored.push(directive.written);
        continue;
      }
      if (directive.args.length === 0) throw new ConfigError(`${directive.file} line ${directive.line}: ${directive.written} needs a value.`);
      if (directive.keyword === 'identityfile') settings.identityFiles.push(...directive.args);
      else if (!settings.values.has(directive.keyword)) settings.values.set(directive.keyword, directive.args);
    }
  }
  return settings;
}

/** Aliases named on Host lines: every word that is not a pattern or a negation. */
function aliases(blocks: Block[]): string[] {
  const found = new Set<string>();
  for (const block of blocks) {
    for (const word of block.patterns ?? []) if (!/[*?!]/.test(word)) found.add(word);
  }
  return [...found];
}

const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ADDRESS_RE = /^[A-Za-z0-9_][A-Za-z0-9._:-]{0,252}$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/** OpenSSH's %-tokens, for the ones that make sense before connecting; any other is refused. */
function expandTokens(text: string, tokens: Record<string, string>, where: string): string {
  return text.replace(/%(.)/g, (_all, token: string) => {
    if (token === '%') return '%';
    const value = tokens[token];
    if (value === undefined) throw new ConfigError(`${where}: the token %${token} is not supported here.`);
    return value;
  });
}

function expandPath(text: string, tokens: Record<string, string>, where: string): string {
  const expanded = expandTokens(text, tokens, where);
  if (expanded === '~' || expanded.startsWith('~/')) return join(homedir(), expanded.slice(1));
  // As OpenSSH: a relative IdentityFile or UserKnownHostsFile is taken from the home directory.
  return isAbsolute(expanded) ? expanded : join(homedir(), expanded);
}

/**
 * The hosts of `path` named by `wanted` (aliases, or patterns matched against the aliases on its
 * Host lines), as relay host entries, with the jump hosts their ProxyJump names added as
 * jump-only entries. `taken`: names the relay config already uses, which imports may not reuse.
 */
export function importSshConfig(path: string, wanted: string[], env: NodeJS.ProcessEnv, taken: ReadonlySet<string>): SshConfigImport {
  const reader = new Reader();
  reader.read(path, 0, { patterns: null, match: false, directives: [] });
  const blocks = reader.blocks;
  const notices = [...new Set(reader.notices)];
  const known = aliases(blocks);
  const selected: string[] = [];
  for (const want of wanted) {
    const matches = /[*?]/.test(want) ? known.filter((alias) => globMatch(alias.toLowerCase(), want.toLowerCase())) : known.filter((alias) => alias === want);
    if (matches.length === 0) throw new ConfigError(`hosts_from_ssh_config: "${want}" matches no Host alias in ${path}.`);
    for (const alias of matches) if (!selected.includes(alias)) selected.push(alias);
    if (selected.length > MAX_IMPORTED_HOSTS) throw new ConfigError(`hosts_from_ssh_config selects more than ${MAX_IMPORTED_HOSTS} hosts of ${path}.`);
  }

  const localUser = env.USER || userInfo().username;
  const entries = new Map<string, HostEntry>();
  const inProgress: string[] = [];
  const importAlias = (alias: string, jumpOnly: boolean): HostEntry => {
    const existing = entries.get(alias);
    if (existing) {
      if (!jumpOnly) existing.jump_only = false;
      return existing;
    }
    if (inProgress.includes(alias)) throw new ConfigError(`${path}: ProxyJump loops (${[...inProgress, alias].join(' > ')}).`);
    if (inProgress.length > MAX_JUMP_HOPS) throw new ConfigError(`${path}: ProxyJump chain ${inProgress.join(' > ')} is longer than ${MAX_JUMP_HOPS} hops.`);
    const where = `host "${alias}" in ${path}`;
    if (!HOST_NAME_RE.test(alias)) throw new ConfigError(`${where}: "${alias}" cannot be a relay host name (letters, digits, ".", "_", "-").`);
    if (taken.has(alias)) throw new ConfigError(`${where}: the relay config already has a host named "${alias}"; keep one of them.`);
    inProgress.push(alias);
    const settings = settingsFor(blocks, alias);
    const first = (keyword: string): string | undefined => settings.values.get(keyword)?.[0];

    const address = expandTokens(first('hostname') ?? alias, { h: alias }, `${where}, HostName`);
    if (!ADDRESS_RE.test(address)) throw new ConfigError(`${where}: HostName "${address.slice(0, 80)}" is not a host name or address.`);
    const user = first('user') ?? localUser;
    if (!USER_RE.test(user)) throw new ConfigError(`${where}: User "${user.slice(0, 80)}" is not a user name the relay accepts.`);
    const portText = first('port') ?? '22';
    const port = Number(portText);
    if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) throw new ConfigError(`${where}: Port "${portText.slice(0, 20)}" is not a port number.`);
    const tokens: Record<string, string> = {
      d: homedir(),
      u: localUser,
      h: address,
      r: user,
      p: String(port),
      n: alias,
      l: hostname().split('.')[0] ?? '',
      L: hostname().split('.')[0] ?? '',
    };
    const entry: HostEntry = { name: alias, address, port, user, jump_only: jumpOnly };

    // One way to log in, as close to ssh as the relay gets: the first IdentityFile that exists,
    // else the agent, else ssh's default key files.
    const identities = settings.identityFiles.map((file) => expandPath(file, tokens, `${where}, IdentityFile`));
    const present = identities.filter((file) => existsSync(file));
    if (present[0] !== undefined) {
      entry.key_path = present[0];
      for (const other of present.slice(1)) notices.push(`ignored: IdentityFile ${other} (host ${alias}): the relay uses one key per host, ${present[0]}`);
    } else if (env.SSH_AUTH_SOCK) {
      entry.agent = true;
      if (identities.length > 0) notices.push(`ignored: IdentityFile ${identities.join(', ')} (host ${alias}): not found; using the ssh-agent`);
    } else {
      const fallback = identities.length > 0 ? undefined : DEFAULT_IDENTITIES.map((file) => join(homedir(), '.ssh', file)).find((file) => existsSync(file));
      if (fallback === undefined) {
        throw new ConfigError(
          `${where}: no way to log in: ${identities.length > 0 ? `IdentityFile ${identities.join(', ')} not found` : 'no IdentityFile, no default key in ~/.ssh'} and no ssh-agent (SSH_AUTH_SOCK). Give it an IdentityFile, or run the relay with an agent.`,
        );
      }
      entry.key_path = fallback;
    }

    const strict = (first('stricthostkeychecking') ?? 'ask').toLowerCase();
    if (['yes', 'true', 'ask'].includes(strict)) entry.strict_host_key_checking = true;
    else if (strict === 'accept-new') entry.strict_host_key_checking = false;
    else if (['no', 'false', 'off'].includes(strict)) {
      entry.strict_host_key_checking = false;
      notices.push(`StrictHostKeyChecking ${strict} (host ${alias}) is taken as accept-new: the relay records new keys and always refuses changed ones`);
    } else throw new ConfigError(`${where}: StrictHostKeyChecking "${strict.slice(0, 20)}" is not yes, no, ask or accept-new.`);

    const knownHosts = settings.values.get('userknownhostsfile');
    if (knownHosts && !(knownHosts.length === 1 && knownHosts[0]?.toLowerCase() === 'none')) {
      entry.known_hosts = knownHosts.map((file) => expandPath(file, tokens, `${where}, UserKnownHostsFile`));
    }

    for (const directive of settings.ignored) {
      const why = directive.toLowerCase() === 'proxycommand' ? ': never run; the relay connects directly (use ProxyJump)' : '';
      notices.push(`ignored: ${directive} (host ${alias})${why}`);
    }

    const proxyJump = first('proxyjump');
    if (proxyJump !== undefined) {
      const hops = parseProxyJump(proxyJump, `${where}, ProxyJump`).map((spec) => {
        // As ssh does for each hop: its settings come from this same file, under its own name.
        const hop = importAlias(spec.host, true);
        if ((spec.user !== undefined && spec.user !== hop.user) || (spec.port !== undefined && spec.port !== hop.port)) {
          throw new ConfigError(
            `${where}: ProxyJump hop "${spec.text}" gives another user or port than ${spec.host}'s own settings (${String(hop.user)}@${String(hop.address)}:${String(hop.port)}); set them in a Host ${spec.host} block instead.`,
          );
        }
        return spec.host;
      });
      if (hops.length > 0) entry.jump = hops;
    }
    inProgress.pop();
    entries.set(alias, entry);
    return entry;
  };
  for (const alias of selected) importAlias(alias, false);
  return { entries: [...entries.values()], notices: [...new Set(notices)] };
}
