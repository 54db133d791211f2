/**
 * The command table: what each program does, as data. The classifier (shared/shell/classify.ts)
 * reads it; nothing else decides a program's class. A program that is not here is `unknown`.
 *
 * How to read an entry (`ProgramRule`):
 * - `class`: the class of a plain call (no option or subcommand below raises it).
 * - `options`: options that raise the call to at least that class. Long options match `--name` and
 *   `--name=value`; a key ending in `*` matches by prefix (`--vacuum*`). Short options are found
 *   inside combined flags too (`-rfo` contains `-o`).
 * - `knownOptions`: when present, a strict allow list: any option not listed (here or in
 *   `options`) makes the call `unlistedOptions` (default `unknown`). Used for tools whose option
 *   grammar is large, and for tools where only a few query options are read-only (dpkg -l).
 * - `bare`: the class of the program called without any argument, when it differs.
 * - `valued`: options that take the next word as their value (so that word is not an operand or a
 *   subcommand); `-n5` and `--lines=5` carry it attached.
 * - `globSafe`: an expanding argument (`*`, `$x`, `$(...)`) may stand anywhere, because every
 *   option a file name could inject is itself harmless. Otherwise an expanding argument is `unknown`
 *   (a file named `-delete` turns `find . *` into a delete).
 * - `operands`: more than `max` operands raise the class (`hostname NAME` sets the host name).
 * - `writes`: the operands (or the last one, or all but the first: `chmod MODE FILE...`) are files the program writes; a write to a system
 *   path, an unknown path or a file that runs or authenticates (README "Command classes") is
 *   privileged. `writeOptions` name options whose value is such a file (`sort -o FILE`).
 * - `subcommands`: the first operand selects a nested rule; `otherSubcommands` is the class of an
 *   unlisted one.
 * - `wrapper`: the program runs another command (given after its own options and `leading`
 *   operands); that command is classified too, and the call is at least `class`.
 * - `special`: a grammar too irregular for data (find, sed, awk, shells, eval, xargs, env, ...),
 *   handled by name in shared/shell/program-rules.ts; the entry still gives the floor class.
 * - `why`: a short human reason, shown to people deciding on the command.
 *
 * Conservative by design: when unsure, leave an option out of `knownOptions` or mark it, and add
 * corpus rows (test/fixtures/command-classes.tsv) for every entry you change.
 */
import type { CommandClass } from './command-class.ts';

export interface WrapperRule {
  /** Options without a value. */
  flags: readonly string[];
  /** Options with a value. */
  valued: readonly string[];
  /** Operands between the wrapper's options and the command (`timeout DURATION cmd`). */
  leading?: number;
}

export interface ProgramRule {
  class: CommandClass;
  why: string;
  options?: Readonly<Record<string, CommandClass>>;
  knownOptions?: readonly string[];
  /** The class of an option missing from `knownOptions` (default `unknown`), e.g. privileged for `iptables -F`. */
  unlistedOptions?: CommandClass;
  /** `+cmd` operands run a viewer command (`less '+!rm x' f` can run a shell command): unknown. */
  plusCommands?: boolean;
  /** The class when called with no arguments at all, if it differs (`crontab` alone installs its input). */
  bare?: CommandClass;
  valued?: readonly string[];
  globSafe?: boolean;
  operands?: { max: number; beyond: CommandClass };
  writes?: 'operands' | 'last-operand' | 'operands-after-first';
  writeOptions?: readonly string[];
  subcommands?: Readonly<Record<string, ProgramRule>>;
  otherSubcommands?: CommandClass;
  wrapper?: WrapperRule;
  special?: SpecialGrammar;
}

export type SpecialGrammar =
  | 'find'
  | 'sed'
  | 'awk'
  | 'shell'
  | 'eval'
  | 'xargs'
  | 'env'
  | 'command'
  | 'set'
  | 'cd'
  | 'read'
  | 'printf'
  | 'exec'
  | 'watch'
  | 'su'
  | 'runuser'
  | 'busybox'
  | 'tar'
  | 'sysctl'
  | 'date'
  | 'service'
  | 'flock';

const R: CommandClass = 'read-only';
const M: CommandClass = 'mutating';
const P: CommandClass = 'privileged';
const U: CommandClass = 'unknown';

function readOnly(why: string, extra: Partial<ProgramRule> = {}): ProgramRule {
  return { class: R, why, ...extra };
}

function sub(cls: CommandClass, why: string, extra: Partial<ProgramRule> = {}): ProgramRule {
  return { class: cls, why, ...extra };
}

/** File tools whose every option only changes what is shown. */
const VIEWER = { globSafe: true } as const;

const SYSTEMCTL_READ = [
  'status',
  'show',
  'cat',
  'is-active',
  'is-enabled',
  'is-failed',
  'is-system-running',
  'list-units',
  'list-unit-files',
  'list-timers',
  'list-sockets',
  'list-dependencies',
  'list-jobs',
  'list-machines',
  'get-default',
  'show-environment',
] as const;

/** Options of git's viewing subcommands that write a file or run a configured program. */
const GIT_VIEW: Partial<ProgramRule> = {
  options: { '--output': M, '--ext-diff': U, '--textconv': U, '-O': U, '--open-files-in-pager': U, '--no-index': R },
  writeOptions: ['--output'],
  globSafe: false,
};

const PACKAGE_MANAGER: ProgramRule = {
  class: R,
  why: 'installs or removes packages',
  otherSubcommands: P,
};

export const PROGRAMS: Readonly<Record<string, ProgramRule>> = {
  // --- Read-only: show files, text and system state ---------------------------------------------
  echo: readOnly('prints its arguments', VIEWER),
  printf: readOnly('prints its arguments', { special: 'printf' }),
  true: readOnly('does nothing', VIEWER),
  false: readOnly('does nothing', VIEWER),
  ':': readOnly('does nothing', VIEWER),
  test: readOnly('tests files and strings', { globSafe: true, options: { '-v': U } }),
  '[': readOnly('tests files and strings', { globSafe: true, options: { '-v': U } }),
  sleep: readOnly('waits'),
  pwd: readOnly('prints the working directory'),
  ls: readOnly('lists files', VIEWER),
  dir: readOnly('lists files', VIEWER),
  tree: readOnly('lists files', { globSafe: true, options: { '-o': M }, valued: ['-o', '-L', '-P', '-I'], writeOptions: ['-o'] }),
  cat: readOnly('shows files', VIEWER),
  tac: readOnly('shows files', VIEWER),
  nl: readOnly('shows files', VIEWER),
  head: readOnly('shows the start of files', VIEWER),
  tail: readOnly('shows the end of files', VIEWER),
  less: readOnly('shows files', { globSafe: true, plusCommands: true, options: { '-o': M, '-O': M, '--log-file': M, '--LOG-FILE': M } }),
  more: readOnly('shows files', { globSafe: true, plusCommands: true }),
  wc: readOnly('counts lines and words', { globSafe: true, options: { '--files0-from': R } }),
  du: readOnly('shows disk usage', VIEWER),
  df: readOnly('shows free disk space', VIEWER),
  free: readOnly('shows memory use'),
  uptime: readOnly('shows load and uptime'),
  ps: readOnly('lists processes'),
  pgrep: readOnly('finds processes'),
  pidof: readOnly('finds processes'),
  top: readOnly('shows processes (batch mode only)', {
    knownOptions: ['-b', '-n', '-d', '-o', '-p', '-u', '-U', '-c', '-H', '-i', '-w', '-1', '-E', '-e', '-s'],
    valued: ['-n', '-d', '-o', '-p', '-u', '-U', '-w', '-E', '-e'],
  }),
  vmstat: readOnly('shows system statistics'),
  iostat: readOnly('shows disk statistics'),
  mpstat: readOnly('shows CPU statistics'),
  ss: readOnly('lists sockets', {
    options: { '-K': P, '--kill': P, '-D': M, '--diag': M },
    valued: ['-D', '--diag', '-F', '--filter', '-f', '--family', '-A', '--query', '--socket'],
    writeOptions: ['-D', '--diag'],
  }),
  netstat: readOnly('lists sockets and routes'),
  lsof: readOnly('lists open files'),
  id: readOnly('shows user ids'),
  whoami: readOnly('shows the user'),
  groups: readOnly('shows groups'),
  who: readOnly('shows who is logged in'),
  w: readOnly('shows who is logged in'),
  last: readOnly('shows logins'),
  users: readOnly('shows who is logged in'),
  hostname: readOnly('shows the host name (with an operand: sets it)', {
    operands: { max: 0, beyond: P },
    options: { '-F': P, '--file': P, '-b': P, '--boot': P },
  }),
  uname: readOnly('shows the system'),
  date: readOnly('shows the date (setting it is privileged)', { special: 'date' }),
  stat: readOnly('shows file metadata', VIEWER),
  file: readOnly('shows file types', { globSafe: true, options: { '-C': M, '--compile': M } }),
  which: readOnly('finds programs', VIEWER),
  whereis: readOnly('finds programs', VIEWER),
  type: readOnly('describes a command', VIEWER),
  basename: readOnly('prints a name', VIEWER),
  dirname: readOnly('prints a name', VIEWER),
  realpath: readOnly('resolves a path', VIEWER),
  readlink: readOnly('resolves a link', VIEWER),
  printenv: readOnly('prints the environment'),
  locale: readOnly('shows locale settings'),
  getent: readOnly('looks up users, groups and hosts'),
  nproc: readOnly('counts CPUs'),
  tty: readOnly('shows the terminal'),
  grep: readOnly('searches text', VIEWER),
  egrep: readOnly('searches text', VIEWER),
  fgrep: readOnly('searches text', VIEWER),
  zgrep: readOnly('searches compressed text', VIEWER),
  zcat: readOnly('shows compressed files', VIEWER),
  rg: readOnly('searches text', { globSafe: false, options: { '--pre': U, '--search-zip': R, '-z': R } }),
  cut: readOnly('selects columns', VIEWER),
  sort: readOnly('sorts lines (with -o it writes a file)', {
    options: { '-o': M, '--output': M, '--compress-program': U, '-T': M, '--temporary-directory': M },
    valued: ['-o', '--output', '-k', '--key', '-t', '--field-separator', '-S', '--buffer-size', '-T', '--temporary-directory', '--parallel', '--files0-from'],
    writeOptions: ['-o', '--output'],
  }),
  uniq: readOnly('filters repeated lines (a second operand is written)', {
    operands: { max: 1, beyond: M },
    writes: 'last-operand',
    valued: ['-f', '-s', '-w'],
  }),
  tr: readOnly('translates characters', VIEWER),
  column: readOnly('formats columns', VIEWER),
  fold: readOnly('wraps lines', VIEWER),
  fmt: readOnly('formats text', VIEWER),
  expand: readOnly('converts tabs', VIEWER),
  paste: readOnly('joins lines', VIEWER),
  join: readOnly('joins files', VIEWER),
  comm: readOnly('compares sorted files', VIEWER),
  rev: readOnly('reverses lines', VIEWER),
  seq: readOnly('prints numbers'),
  yes: readOnly('prints a line repeatedly'),
  diff: readOnly('compares files', { globSafe: false }),
  cmp: readOnly('compares files'),
  md5sum: readOnly('prints checksums', VIEWER),
  sha1sum: readOnly('prints checksums', VIEWER),
  sha256sum: readOnly('prints checksums', VIEWER),
  sha512sum: readOnly('prints checksums', VIEWER),
  base64: readOnly('encodes or decodes to output', VIEWER),
  xxd: readOnly('shows bytes (a second operand is written)', {
    operands: { max: 1, beyond: M },
    writes: 'last-operand',
    valued: ['-c', '-g', '-l', '-s', '-o', '-n'],
  }),
  hexdump: readOnly('shows bytes', VIEWER),
  od: readOnly('shows bytes', VIEWER),
  strings: readOnly('shows printable strings', VIEWER),
  jq: readOnly('filters JSON', { options: { '--rawfile': R, '--slurpfile': R } }),
  journalctl: readOnly('shows the journal', {
    options: {
      '--vacuum*': P,
      '--rotate': P,
      '--flush': P,
      '--sync': P,
      '--relinquish-var': P,
      '--smart-relinquish-var': P,
      '--setup-keys': P,
      '--update-catalog': P,
    },
    valued: [
      '-u',
      '--unit',
      '--user-unit',
      '-n',
      '--lines',
      '-p',
      '--priority',
      '-S',
      '--since',
      '-U',
      '--until',
      '-o',
      '--output',
      '-t',
      '--identifier',
      '-b',
      '--boot',
      '-g',
      '--grep',
      '-D',
      '--directory',
      '--file',
      '-M',
      '--machine',
      '--output-fields',
      '-F',
      '--field',
      '--facility',
      '-I',
      '--cursor',
      '--after-cursor',
      '-c',
      '--root',
      '--image',
      '--namespace',
    ],
  }),
  dmesg: readOnly('shows kernel messages', {
    options: { '-c': P, '-C': P, '--clear': P, '--read-clear': P, '-n': P, '--console-level': P, '-D': P, '-E': P, '--console-off': P, '--console-on': P },
  }),
  lsblk: readOnly('lists block devices'),
  blkid: readOnly('lists block device attributes'),
  findmnt: readOnly('lists mounts'),
  lscpu: readOnly('shows CPUs'),
  lsmod: readOnly('lists kernel modules'),
  lspci: readOnly('lists PCI devices'),
  lsusb: readOnly('lists USB devices'),
  ip: readOnly('shows network state (changes are privileged)', {
    valued: ['-f', '-family', '-n', '-netns', '-b', '-batch', '-rc', '-rcvbuf'],
    options: { '-b': U, '-batch': U, '-n': U, '-netns': U, '-force': U },
    subcommands: {
      addr: sub(R, 'shows addresses', {
        subcommands: { show: sub(R, 'shows addresses'), list: sub(R, 'shows addresses'), ls: sub(R, 'shows addresses') },
        otherSubcommands: P,
      }),
      address: sub(R, 'shows addresses', {
        subcommands: { show: sub(R, 'shows addresses'), list: sub(R, 'shows addresses'), ls: sub(R, 'shows addresses') },
        otherSubcommands: P,
      }),
      a: sub(R, 'shows addresses', {
        subcommands: { show: sub(R, 'shows addresses'), s: sub(R, 'shows addresses'), list: sub(R, 'shows addresses') },
        otherSubcommands: P,
      }),
      link: sub(R, 'shows links', { subcommands: { show: sub(R, 'shows links'), list: sub(R, 'shows links') }, otherSubcommands: P }),
      l: sub(R, 'shows links', { subcommands: { show: sub(R, 'shows links') }, otherSubcommands: P }),
      route: sub(R, 'shows routes', {
        subcommands: { show: sub(R, 'shows routes'), list: sub(R, 'shows routes'), get: sub(R, 'looks up a route') },
        otherSubcommands: P,
      }),
      r: sub(R, 'shows routes', { subcommands: { show: sub(R, 'shows routes'), list: sub(R, 'shows routes') }, otherSubcommands: P }),
      neigh: sub(R, 'shows neighbours', { subcommands: { show: sub(R, 'shows neighbours') }, otherSubcommands: P }),
      rule: sub(R, 'shows routing rules', { subcommands: { show: sub(R, 'shows routing rules'), list: sub(R, 'shows routing rules') }, otherSubcommands: P }),
      '-s': sub(U, 'unexpected option order'),
    },
    otherSubcommands: P,
  }),
  mount: readOnly('lists mounts (mounting is privileged)', {
    operands: { max: 0, beyond: P },
    unlistedOptions: P,
    knownOptions: ['-l', '--show-labels', '-t', '--types'],
    valued: ['-t', '--types'],
  }),
  env: readOnly('runs a command with a changed environment, or prints it', { special: 'env' }),
  command: readOnly('looks up or runs a command', { special: 'command' }),
  builtin: readOnly('runs a shell builtin', { wrapper: { flags: [], valued: [] } }),
  set: readOnly('sets shell options (-e -u -x -o pipefail only)', { special: 'set' }),
  cd: readOnly('changes the directory (later relative writes count as unknown paths)', { special: 'cd' }),
  pushd: readOnly('changes the directory (later relative writes count as unknown paths)', { special: 'cd' }),
  popd: readOnly('changes the directory (later relative writes count as unknown paths)', { special: 'cd' }),
  read: readOnly('reads a line into variables', { special: 'read' }),
  find: readOnly('finds files (-delete and -exec change that)', { special: 'find' }),
  sed: readOnly('edits a text stream (only printing scripts are read-only)', { special: 'sed' }),
  awk: readOnly('processes text (only programs without system, pipes, redirection or getline are read-only)', { special: 'awk' }),
  gawk: readOnly('processes text', { special: 'awk' }),
  mawk: readOnly('processes text', { special: 'awk' }),
  tar: readOnly('archives files (listing is read-only, creating or extracting writes)', { special: 'tar' }),
  sysctl: readOnly('shows kernel settings (setting them is privileged)', { special: 'sysctl' }),
  ping: readOnly('sends echo requests', {
    knownOptions: ['-c', '-i', '-W', '-w', '-n', '-q', '-4', '-6', '-s', '-t'],
    valued: ['-c', '-i', '-W', '-w', '-s', '-t'],
  }),
  dig: readOnly('looks up DNS'),
  host: readOnly('looks up DNS'),
  nslookup: readOnly('looks up DNS'),
  traceroute: readOnly('traces a network route'),
  git: {
    class: R,
    why: 'git (only inspection subcommands are read-only)',
    options: { '-c': U, '--config-env': U, '--exec-path': U, '-p': U, '--paginate': U, '--output': M, '--ext-diff': U, '--open-files-in-pager': U, '-O': U },
    valued: [
      '-C',
      '-c',
      '--config-env',
      '--git-dir',
      '--work-tree',
      '--namespace',
      '-n',
      '--max-count',
      '--format',
      '--pretty',
      '--since',
      '--until',
      '--author',
      '--grep',
    ],
    writeOptions: ['--output'],
    subcommands: {
      status: sub(R, 'shows the working tree state', GIT_VIEW),
      log: sub(R, 'shows history', GIT_VIEW),
      show: sub(R, 'shows an object', GIT_VIEW),
      diff: sub(R, 'shows changes', GIT_VIEW),
      'rev-parse': sub(R, 'resolves names'),
      blame: sub(R, 'shows line history', GIT_VIEW),
      'ls-files': sub(R, 'lists files'),
      'ls-tree': sub(R, 'lists a tree'),
      'cat-file': sub(R, 'shows an object'),
      shortlog: sub(R, 'summarises history', GIT_VIEW),
      describe: sub(R, 'names a commit'),
      grep: sub(R, 'searches files', GIT_VIEW),
      branch: sub(R, 'lists branches (with a name: creates one)', {
        operands: { max: 0, beyond: M },
        options: {
          '-d': M,
          '-D': M,
          '--delete': M,
          '-m': M,
          '-M': M,
          '--move': M,
          '-c': M,
          '-C': M,
          '--copy': M,
          '-u': M,
          '--set-upstream-to': M,
          '--unset-upstream': M,
          '--edit-description': U,
          '-f': M,
          '--force': M,
        },
      }),
      remote: sub(R, 'lists remotes', { operands: { max: 0, beyond: M } }),
      tag: sub(R, 'lists tags (with a name: creates one)', { operands: { max: 0, beyond: M }, options: { '-d': M, '--delete': M, '-a': M, '-s': M, '-f': M } }),
      stash: sub(M, 'stashes changes', { subcommands: { list: sub(R, 'lists stashes'), show: sub(R, 'shows a stash') }, otherSubcommands: M }),
      config: sub(R, 'reads configuration (writing it is unknown: it can set programs git runs)', {
        knownOptions: [
          '--get',
          '--get-all',
          '--get-regexp',
          '-l',
          '--list',
          '--show-origin',
          '--show-scope',
          '--global',
          '--system',
          '--local',
          '--name-only',
          '-z',
          '--null',
        ],
        operands: { max: 1, beyond: U },
      }),
      reflog: sub(R, 'shows the reflog', { subcommands: { show: sub(R, 'shows the reflog') }, otherSubcommands: M }),
    },
    otherSubcommands: M,
  },
  systemctl: {
    class: R,
    why: 'controls services (only status and listing are read-only)',
    valued: ['-t', '--type', '-p', '--property', '-n', '--lines', '-o', '--output', '-H', '--host', '-M', '--machine', '--state', '--root'],
    options: { '-H': U, '--host': U, '-M': U, '--machine': U, '--root': U },
    subcommands: Object.fromEntries(SYSTEMCTL_READ.map((name) => [name, sub(R, `service ${name}`, { globSafe: true })])),
    otherSubcommands: P,
  },
  service: { class: R, why: 'shows or controls a service', special: 'service' },
  timedatectl: {
    class: R,
    why: 'changes time settings (status is read-only)',
    subcommands: {
      status: sub(R, 'shows time settings'),
      show: sub(R, 'shows time settings'),
      'list-timezones': sub(R, 'lists time zones'),
      'timesync-status': sub(R, 'shows time sync'),
    },
    otherSubcommands: P,
  },
  hostnamectl: {
    class: R,
    why: 'changes the host name (status is read-only)',
    subcommands: { status: sub(R, 'shows the host name') },
    otherSubcommands: P,
    operands: { max: 0, beyond: P },
  },
  loginctl: {
    class: R,
    why: 'manages sessions (listing is read-only)',
    subcommands: {
      'list-sessions': sub(R, 'lists sessions'),
      'list-users': sub(R, 'lists users'),
      'show-session': sub(R, 'shows a session'),
      'show-user': sub(R, 'shows a user'),
      'session-status': sub(R, 'shows a session'),
      'user-status': sub(R, 'shows a user'),
    },
    otherSubcommands: P,
  },
  networkctl: {
    class: R,
    why: 'manages network links (listing is read-only)',
    subcommands: { list: sub(R, 'lists links'), status: sub(R, 'shows links'), lldp: sub(R, 'shows neighbours') },
    otherSubcommands: P,
  },
  resolvectl: {
    class: R,
    why: 'manages DNS resolution (queries are read-only)',
    subcommands: { status: sub(R, 'shows DNS settings'), query: sub(R, 'looks up names'), statistics: sub(R, 'shows statistics') },
    otherSubcommands: P,
  },
  docker: {
    class: R,
    why: 'docker (the daemon acts as root; only inspection is read-only)',
    valued: ['-H', '--host', '--context', '-c', '--config', '-l', '--log-level', '-f', '--format', '--filter', '-n', '--last', '--since', '--until', '--tail'],
    options: { '-H': U, '--host': U, '--context': U, '-c': U, '--config': U },
    subcommands: {
      ps: sub(R, 'lists containers'),
      logs: sub(R, 'shows container logs'),
      inspect: sub(R, 'inspects objects'),
      images: sub(R, 'lists images'),
      stats: sub(R, 'shows container statistics'),
      info: sub(R, 'shows daemon information'),
      version: sub(R, 'shows versions'),
      top: sub(R, 'lists container processes'),
      port: sub(R, 'lists port mappings'),
      history: sub(R, 'shows image history'),
      events: sub(R, 'shows events'),
      diff: sub(R, 'shows container file changes'),
      container: sub(P, 'manages containers', {
        subcommands: {
          ls: sub(R, 'lists containers'),
          list: sub(R, 'lists containers'),
          inspect: sub(R, 'inspects containers'),
          logs: sub(R, 'shows container logs'),
          top: sub(R, 'lists processes'),
          port: sub(R, 'lists ports'),
          stats: sub(R, 'shows statistics'),
        },
        otherSubcommands: P,
      }),
      image: sub(P, 'manages images', {
        subcommands: { ls: sub(R, 'lists images'), list: sub(R, 'lists images'), inspect: sub(R, 'inspects images'), history: sub(R, 'shows image history') },
        otherSubcommands: P,
      }),
      network: sub(P, 'manages networks', { subcommands: { ls: sub(R, 'lists networks'), inspect: sub(R, 'inspects networks') }, otherSubcommands: P }),
      volume: sub(P, 'manages volumes', { subcommands: { ls: sub(R, 'lists volumes'), inspect: sub(R, 'inspects volumes') }, otherSubcommands: P }),
      compose: sub(P, 'manages compose projects', {
        valued: ['-f', '--file', '-p', '--project-name'],
        subcommands: {
          ps: sub(R, 'lists services'),
          logs: sub(R, 'shows service logs'),
          config: sub(R, 'shows the configuration'),
          ls: sub(R, 'lists projects'),
          images: sub(R, 'lists images'),
          top: sub(R, 'lists processes'),
        },
        otherSubcommands: P,
      }),
      system: sub(P, 'manages docker', {
        subcommands: { df: sub(R, 'shows disk use'), info: sub(R, 'shows information'), events: sub(R, 'shows events') },
        otherSubcommands: P,
      }),
    },
    otherSubcommands: P,
  },
  kubectl: {
    class: R,
    why: 'kubectl (only inspection is read-only)',
    valued: [
      '-n',
      '--namespace',
      '--context',
      '--cluster',
      '--kubeconfig',
      '-l',
      '--selector',
      '-o',
      '--output',
      '-c',
      '--container',
      '--since',
      '--tail',
      '--field-selector',
      '-f',
      '--filename',
      '-s',
      '--server',
      '--user',
      '--token',
    ],
    options: { '--kubeconfig': U, '-s': U, '--server': U, '--token': U, '--user': U, '--as': U, '--as-group': U },
    subcommands: {
      get: sub(R, 'lists resources'),
      describe: sub(R, 'describes resources'),
      logs: sub(R, 'shows pod logs'),
      top: sub(R, 'shows resource use'),
      version: sub(R, 'shows versions'),
      explain: sub(R, 'documents resources'),
      'api-resources': sub(R, 'lists resource types'),
      'api-versions': sub(R, 'lists API versions'),
      'cluster-info': sub(R, 'shows cluster endpoints', { subcommands: { dump: sub(M, 'dumps cluster state to files') }, otherSubcommands: R }),
      events: sub(R, 'lists events'),
      config: sub(M, 'changes kubeconfig', {
        subcommands: {
          view: sub(R, 'shows kubeconfig'),
          'current-context': sub(R, 'shows the context'),
          'get-contexts': sub(R, 'lists contexts'),
          'get-clusters': sub(R, 'lists clusters'),
        },
        otherSubcommands: M,
      }),
      auth: sub(M, 'kubectl auth', { subcommands: { 'can-i': sub(R, 'checks permissions'), whoami: sub(R, 'shows the user') }, otherSubcommands: M }),
      exec: sub(P, 'runs a command in a container'),
      attach: sub(P, 'attaches to a container'),
      debug: sub(P, 'starts a debug container'),
      run: sub(P, 'starts a pod'),
      cp: sub(P, 'copies files into or out of a container'),
      'port-forward': sub(P, 'forwards ports'),
      proxy: sub(P, 'opens an API proxy'),
    },
    otherSubcommands: M,
  },
  apt: {
    ...PACKAGE_MANAGER,
    subcommands: {
      list: sub(R, 'lists packages'),
      show: sub(R, 'shows a package'),
      policy: sub(R, 'shows package versions'),
      search: sub(R, 'searches packages'),
      depends: sub(R, 'shows dependencies'),
      rdepends: sub(R, 'shows dependants'),
      changelog: sub(R, 'shows a changelog'),
    },
  },
  'apt-cache': {
    ...PACKAGE_MANAGER,
    subcommands: {
      show: sub(R, 'shows a package'),
      policy: sub(R, 'shows versions'),
      search: sub(R, 'searches packages'),
      depends: sub(R, 'shows dependencies'),
      rdepends: sub(R, 'shows dependants'),
      madison: sub(R, 'shows versions'),
      showpkg: sub(R, 'shows a package'),
      pkgnames: sub(R, 'lists packages'),
      stats: sub(R, 'shows statistics'),
    },
  },
  'apt-get': { ...PACKAGE_MANAGER, subcommands: { changelog: sub(R, 'shows a changelog') } },
  aptitude: PACKAGE_MANAGER,
  dpkg: {
    class: R,
    unlistedOptions: P,
    why: 'installs or removes packages (queries are read-only)',
    knownOptions: [
      '-l',
      '--list',
      '-s',
      '--status',
      '-L',
      '--listfiles',
      '-S',
      '--search',
      '-p',
      '--print-avail',
      '--get-selections',
      '--print-architecture',
      '--print-foreign-architectures',
      '--verify',
      '-V',
      '-C',
      '--audit',
    ],
    globSafe: true,
  },
  'dpkg-query': readOnly('queries installed packages', { valued: ['-f', '--showformat'], globSafe: true }),
  rpm: {
    class: R,
    unlistedOptions: P,
    why: 'installs or removes packages (queries are read-only)',
    knownOptions: [
      '-q',
      '--query',
      '-a',
      '--all',
      '-i',
      '--info',
      '-l',
      '--list',
      '-f',
      '--file',
      '-V',
      '--verify',
      '--qf',
      '--queryformat',
      '-R',
      '--requires',
      '--provides',
      '-c',
      '--configfiles',
      '--changelog',
    ],
    valued: ['--qf', '--queryformat'],
  },
  yum: {
    ...PACKAGE_MANAGER,
    subcommands: {
      list: sub(R, 'lists packages'),
      info: sub(R, 'shows a package'),
      search: sub(R, 'searches packages'),
      repolist: sub(R, 'lists repositories'),
      provides: sub(R, 'finds packages'),
      history: sub(R, 'shows history', { operands: { max: 0, beyond: P } }),
    },
  },
  dnf: {
    ...PACKAGE_MANAGER,
    subcommands: {
      list: sub(R, 'lists packages'),
      info: sub(R, 'shows a package'),
      search: sub(R, 'searches packages'),
      repolist: sub(R, 'lists repositories'),
      provides: sub(R, 'finds packages'),
    },
  },
  apk: {
    ...PACKAGE_MANAGER,
    subcommands: { info: sub(R, 'shows packages'), list: sub(R, 'lists packages'), search: sub(R, 'searches packages'), policy: sub(R, 'shows versions') },
  },
  pacman: {
    class: R,
    unlistedOptions: P,
    bare: R,
    why: 'installs or removes packages (queries are read-only)',
    knownOptions: ['-Q', '-Qi', '-Ql', '-Qo', '-Qs', '-Qe', '-Qm', '-Ss', '-Si', '--query'],
  },
  zypper: PACKAGE_MANAGER,
  snap: {
    ...PACKAGE_MANAGER,
    subcommands: {
      list: sub(R, 'lists snaps'),
      info: sub(R, 'shows a snap'),
      find: sub(R, 'searches snaps'),
      version: sub(R, 'shows versions'),
      services: sub(R, 'lists services'),
      changes: sub(R, 'lists changes'),
    },
  },
  flatpak: { ...PACKAGE_MANAGER, subcommands: { list: sub(R, 'lists apps'), info: sub(R, 'shows an app') } },
  pip: {
    class: R,
    why: 'installs or removes Python packages (listing is read-only)',
    subcommands: { list: sub(R, 'lists packages'), show: sub(R, 'shows a package'), freeze: sub(R, 'lists packages'), check: sub(R, 'checks dependencies') },
    otherSubcommands: P,
  },
  pip3: {
    class: R,
    why: 'installs or removes Python packages (listing is read-only)',
    subcommands: { list: sub(R, 'lists packages'), show: sub(R, 'shows a package'), freeze: sub(R, 'lists packages'), check: sub(R, 'checks dependencies') },
    otherSubcommands: P,
  },
  npm: {
    class: R,
    why: 'installs packages and runs package scripts (listing is read-only)',
    subcommands: { ls: sub(R, 'lists packages'), list: sub(R, 'lists packages'), view: sub(R, 'shows a package'), outdated: sub(R, 'lists outdated packages') },
    otherSubcommands: P,
  },
  crontab: { class: R, bare: P, unlistedOptions: P, why: 'changes scheduled jobs (only -l lists them)', knownOptions: ['-l'], operands: { max: 0, beyond: P } },
  ufw: {
    class: R,
    why: 'changes the firewall (status is read-only)',
    subcommands: { status: sub(R, 'shows firewall status'), show: sub(R, 'shows firewall reports'), version: sub(R, 'shows the version') },
    otherSubcommands: P,
  },
  iptables: {
    class: R,
    unlistedOptions: P,
    why: 'changes the firewall (listing is read-only)',
    knownOptions: [
      '-L',
      '--list',
      '-S',
      '--list-rules',
      '-n',
      '--numeric',
      '-v',
      '--verbose',
      '-t',
      '--table',
      '-x',
      '--exact',
      '--line-numbers',
      '-w',
      '--wait',
    ],
    valued: ['-t', '--table'],
  },
  ip6tables: {
    class: R,
    unlistedOptions: P,
    why: 'changes the firewall (listing is read-only)',
    knownOptions: ['-L', '--list', '-S', '--list-rules', '-n', '--numeric', '-v', '--verbose', '-t', '--table', '-x', '--exact', '--line-numbers'],
    valued: ['-t', '--table'],
  },
  'iptables-save': readOnly('prints firewall rules', {
    options: { '-f': M, '--file': M },
    writeOptions: ['-f', '--file'],
    valued: ['-f', '--file', '-t', '--table', '-M'],
  }),
  nft: {
    class: R,
    why: 'changes the firewall (listing is read-only)',
    valued: [],
    subcommands: { list: sub(R, 'lists firewall rules', { globSafe: false }) },
    otherSubcommands: P,
    options: { '-f': P, '--file': P, '-i': P, '--interactive': P },
  },
  pct: {
    class: R,
    why: 'manages Proxmox containers (listing and status are read-only)',
    subcommands: {
      list: sub(R, 'lists containers'),
      status: sub(R, 'shows a container'),
      config: sub(R, 'shows container configuration'),
      pending: sub(R, 'shows pending changes'),
      df: sub(R, 'shows container disk use'),
      listsnapshot: sub(R, 'lists snapshots'),
    },
    otherSubcommands: P,
  },
  qm: {
    class: R,
    why: 'manages Proxmox VMs (listing and status are read-only)',
    subcommands: {
      list: sub(R, 'lists VMs'),
      status: sub(R, 'shows a VM'),
      config: sub(R, 'shows VM configuration'),
      pending: sub(R, 'shows pending changes'),
      listsnapshot: sub(R, 'lists snapshots'),
      showcmd: sub(R, 'shows the start command'),
    },
    otherSubcommands: P,
  },
  pvesh: {
    class: R,
    why: 'calls the Proxmox API (get is read-only)',
    subcommands: { get: sub(R, 'reads the Proxmox API'), ls: sub(R, 'lists the Proxmox API') },
    otherSubcommands: P,
  },
  zpool: {
    class: R,
    why: 'manages ZFS pools (status and listing are read-only)',
    subcommands: {
      status: sub(R, 'shows pool status'),
      list: sub(R, 'lists pools'),
      iostat: sub(R, 'shows pool I/O'),
      get: sub(R, 'shows pool properties'),
      history: sub(R, 'shows pool history'),
    },
    otherSubcommands: P,
  },
  zfs: {
    class: R,
    why: 'manages ZFS datasets (listing is read-only)',
    subcommands: { list: sub(R, 'lists datasets'), get: sub(R, 'shows properties') },
    otherSubcommands: P,
  },

  // --- Mutating: change files or processes the user owns -----------------------------------------
  rm: { class: M, why: 'deletes files', writes: 'operands', globSafe: true },
  rmdir: { class: M, why: 'deletes directories', writes: 'operands', globSafe: true },
  mv: {
    class: M,
    why: 'moves files',
    writes: 'operands',
    globSafe: true,
    valued: ['-t', '--target-directory', '-S', '--suffix'],
    writeOptions: ['-t', '--target-directory'],
  },
  cp: {
    class: M,
    why: 'copies files',
    writes: 'last-operand',
    globSafe: true,
    valued: ['-t', '--target-directory', '-S', '--suffix'],
    writeOptions: ['-t', '--target-directory'],
  },
  install: {
    class: M,
    why: 'installs files',
    writes: 'last-operand',
    globSafe: true,
    valued: ['-t', '--target-directory', '-m', '--mode', '-o', '--owner', '-g', '--group', '-S', '--suffix'],
    writeOptions: ['-t', '--target-directory'],
  },
  ln: {
    class: M,
    why: 'creates links',
    writes: 'last-operand',
    globSafe: true,
    valued: ['-t', '--target-directory', '-S', '--suffix'],
    writeOptions: ['-t', '--target-directory'],
  },
  mkdir: { class: M, why: 'creates directories', writes: 'operands', globSafe: true, valued: ['-m', '--mode'] },
  touch: { class: M, why: 'creates or touches files', writes: 'operands', globSafe: true, valued: ['-d', '--date', '-t', '-r', '--reference'] },
  chmod: { class: M, writes: 'operands-after-first', why: 'changes permissions', globSafe: true, valued: ['--reference'] },
  chown: { class: M, writes: 'operands-after-first', why: 'changes ownership', globSafe: true, valued: ['--reference', '--from'] },
  chgrp: { class: M, writes: 'operands-after-first', why: 'changes group ownership', globSafe: true, valued: ['--reference'] },
  truncate: { class: M, why: 'truncates files', writes: 'operands', globSafe: true, valued: ['-s', '--size', '-r', '--reference'] },
  tee: { class: M, why: 'writes its input to files', writes: 'operands', globSafe: true },
  shred: { class: M, why: 'overwrites files', writes: 'operands', globSafe: true, valued: ['-n', '--iterations', '-s', '--size', '--random-source'] },
  mktemp: { class: M, why: 'creates a temporary file', valued: ['-p', '--tmpdir', '--suffix'] },
  rsync: {
    class: M,
    why: 'copies files',
    writes: 'last-operand',
    options: { '-e': U, '--rsh': U, '--rsync-path': U },
    valued: ['-e', '--rsh', '--rsync-path', '--exclude', '--include', '--filter', '-f'],
  },
  patch: { class: M, why: 'patches files', valued: ['-p', '-i', '--input', '-o', '--output', '-d', '--directory'] },
  split: { class: M, why: 'writes pieces of a file', valued: ['-l', '-b', '-n', '-a', '--filter'], options: { '--filter': U } },
  kill: { class: M, why: 'signals processes' },
  pkill: { class: M, why: 'signals processes' },
  killall: { class: M, why: 'signals processes' },
  gzip: { class: M, why: 'compresses files in place', options: { '-c': R, '--stdout': R, '-l': R, '--list': R, '-t': R, '--test': R } },
  gunzip: { class: M, why: 'decompresses files in place', options: { '-c': R, '--stdout': R, '-l': R, '-t': R } },
  unzip: { class: M, why: 'extracts files', valued: ['-d'], writeOptions: ['-d'] },
  zip: { class: M, why: 'writes an archive', writes: 'operands', options: { '-T': U, '--test': U, '-TT': U, '--unzip-command': U } },
  curl: {
    class: M,
    why: 'makes network requests (they can change remote state)',
    writeOptions: ['-o', '--output', '-K', '--config'],
    valued: [
      '-o',
      '--output',
      '-X',
      '--request',
      '-H',
      '--header',
      '-d',
      '--data',
      '-u',
      '--user',
      '-K',
      '--config',
      '-A',
      '--user-agent',
      '-m',
      '--max-time',
      '-w',
      '--write-out',
    ],
  },
  wget: {
    class: M,
    why: 'downloads files',
    writeOptions: ['-O', '--output-document', '-P', '--directory-prefix', '-o', '--output-file'],
    valued: ['-O', '--output-document', '-P', '--directory-prefix', '-o', '--output-file', '-U', '--user-agent', '-T', '--timeout'],
  },
  logger: { class: M, why: 'writes to the system log' },
  wall: { class: M, why: 'writes to every terminal' },
  'ssh-keygen': { class: M, why: 'creates or changes keys' },
  setfacl: { class: M, why: 'changes access lists', writes: 'operands', valued: ['-m', '-M', '-x', '-X', '--set', '--set-file'] },

  // --- Privileged: the system itself ------------------------------------------------------------
  dd: { class: P, why: 'copies raw data (often to devices)' },
  fdisk: { class: P, why: 'partitions disks' },
  sfdisk: { class: P, why: 'partitions disks' },
  gdisk: { class: P, why: 'partitions disks' },
  parted: { class: P, why: 'partitions disks' },
  wipefs: { class: P, why: 'wipes disk signatures' },
  mkswap: { class: P, why: 'formats swap' },
  swapon: { class: P, why: 'enables swap' },
  swapoff: { class: P, why: 'disables swap' },
  losetup: { class: P, why: 'manages loop devices' },
  cryptsetup: { class: P, why: 'manages encrypted disks' },
  mdadm: { class: P, why: 'manages RAID' },
  lvcreate: { class: P, why: 'manages volumes' },
  lvremove: { class: P, why: 'manages volumes' },
  lvextend: { class: P, why: 'manages volumes' },
  vgcreate: { class: P, why: 'manages volumes' },
  pvcreate: { class: P, why: 'manages volumes' },
  shutdown: { class: P, why: 'shuts the host down' },
  reboot: { class: P, why: 'reboots the host' },
  poweroff: { class: P, why: 'powers the host off' },
  halt: { class: P, why: 'halts the host' },
  init: { class: P, why: 'changes the run level' },
  telinit: { class: P, why: 'changes the run level' },
  useradd: { class: P, why: 'manages users' },
  usermod: { class: P, why: 'manages users' },
  userdel: { class: P, why: 'manages users' },
  adduser: { class: P, why: 'manages users' },
  deluser: { class: P, why: 'manages users' },
  groupadd: { class: P, why: 'manages groups' },
  groupdel: { class: P, why: 'manages groups' },
  gpasswd: { class: P, why: 'manages groups' },
  passwd: { class: P, why: 'changes passwords' },
  chpasswd: { class: P, why: 'changes passwords' },
  chage: { class: P, why: 'changes password ageing' },
  visudo: { class: P, why: 'edits sudo rules' },
  vipw: { class: P, why: 'edits the user database' },
  umount: { class: P, why: 'unmounts file systems' },
  modprobe: { class: P, why: 'loads kernel modules' },
  insmod: { class: P, why: 'loads kernel modules' },
  rmmod: { class: P, why: 'unloads kernel modules' },
  setenforce: { class: P, why: 'changes SELinux enforcement' },
  'firewall-cmd': { class: P, why: 'changes the firewall' },
  'update-grub': { class: P, why: 'changes the boot loader' },
  'grub-install': { class: P, why: 'changes the boot loader' },
  'update-alternatives': { class: P, why: 'changes system alternatives' },
  chattr: { class: P, why: 'changes file attributes' },
  'dpkg-reconfigure': { class: P, why: 'reconfigures packages' },
  'apt-key': { class: P, why: 'changes trusted package keys' },
  'add-apt-repository': { class: P, why: 'adds package sources' },

  // Programs that gain privilege: at least privileged, and the command they run is classified too.
  sudo: {
    class: P,
    why: 'runs a command as another user',
    wrapper: {
      flags: [
        '-A',
        '--askpass',
        '-b',
        '--background',
        '-E',
        '--preserve-env',
        '-H',
        '--set-home',
        '-n',
        '--non-interactive',
        '-P',
        '--preserve-groups',
        '-S',
        '--stdin',
        '-k',
        '--reset-timestamp',
        '-K',
        '--remove-timestamp',
        '-i',
        '--login',
        '-s',
        '--shell',
        '-N',
        '--no-update',
        '-B',
        '--bell',
      ],
      valued: [
        '-u',
        '--user',
        '-g',
        '--group',
        '-h',
        '--host',
        '-p',
        '--prompt',
        '-C',
        '--close-from',
        '-D',
        '--chdir',
        '-R',
        '--chroot',
        '-T',
        '--command-timeout',
        '-U',
        '--other-user',
        '-r',
        '--role',
        '-t',
        '--type',
      ],
    },
  },
  doas: { class: P, why: 'runs a command as another user', wrapper: { flags: ['-n', '-s'], valued: ['-u', '-C'] } },
  pkexec: { class: P, why: 'runs a command as another user', wrapper: { flags: ['--disable-internal-agent', '--keep-cwd'], valued: ['--user'] } },
  chroot: { class: P, why: 'runs a command in another root', wrapper: { flags: ['--skip-chdir'], valued: ['--userspec', '--groups'], leading: 1 } },
  su: { class: P, why: 'runs a shell as another user', special: 'su' },
  runuser: { class: P, why: 'runs a command as another user', special: 'runuser' },
  nsenter: { class: U, why: 'runs a command in other namespaces (not classified further)' },
  unshare: { class: U, why: 'runs a command in new namespaces (not classified further)' },
  'systemd-run': { class: U, why: 'runs a command as a system service (not classified further)' },
  setpriv: { class: U, why: 'runs a command with changed privileges (not classified further)' },
  capsh: { class: U, why: 'runs a command with changed capabilities (not classified further)' },

  // Wrappers that only change how the inner command runs.
  nice: { class: R, why: 'runs a command at another priority', wrapper: { flags: [], valued: ['-n', '--adjustment'] } },
  ionice: {
    class: R,
    why: 'runs a command at another I/O priority',
    options: { '-p': M, '--pid': M, '-P': M, '--pgid': M, '-u': M, '--uid': M },
    wrapper: { flags: ['-t', '--ignore'], valued: ['-c', '--class', '-n', '--classdata'] },
  },
  nohup: { class: R, why: 'runs a command immune to hangups', wrapper: { flags: [], valued: [] } },
  timeout: {
    class: R,
    why: 'runs a command with a time limit',
    wrapper: { flags: ['--preserve-status', '--foreground', '-v', '--verbose'], valued: ['-k', '--kill-after', '-s', '--signal'], leading: 1 },
  },
  stdbuf: { class: R, why: 'runs a command with other buffering', wrapper: { flags: [], valued: ['-i', '--input', '-o', '--output', '-e', '--error'] } },
  time: {
    class: R,
    why: 'times a command',
    options: { '-o': M, '--output': M },
    writeOptions: ['-o', '--output'],
    wrapper: { flags: ['-p', '-v', '--verbose', '-a', '--append', '--portability', '-q', '--quiet'], valued: ['-o', '--output', '-f', '--format'] },
  },
  setsid: { class: R, why: 'runs a command in a new session', wrapper: { flags: ['-c', '--ctty', '-f', '--fork', '-w', '--wait'], valued: [] } },
  taskset: {
    class: R,
    why: 'runs a command on chosen CPUs',
    options: { '-p': M, '--pid': M },
    wrapper: { flags: ['-a', '--all-tasks', '-c', '--cpu-list'], valued: [], leading: 1 },
  },
  flock: { class: M, why: 'runs a command holding a lock file (creates the file)', special: 'flock' },
  watch: { class: R, why: 'runs a command repeatedly (through sh -c)', special: 'watch' },
  xargs: { class: R, why: 'runs a command with arguments from its input', special: 'xargs' },
  busybox: { class: R, why: 'runs a busybox applet', special: 'busybox' },
  exec: { class: R, why: 'replaces the shell with a command', special: 'exec' },

  // Shells and code: the text they run is parsed when it is given literally with -c; otherwise unknown.
  sh: { class: R, why: 'runs shell text', special: 'shell' },
  bash: { class: R, why: 'runs shell text', special: 'shell' },
  dash: { class: R, why: 'runs shell text', special: 'shell' },
  ash: { class: R, why: 'runs shell text', special: 'shell' },
  ksh: { class: R, why: 'runs shell text', special: 'shell' },
  zsh: { class: R, why: 'runs shell text', special: 'shell' },
  eval: { class: R, why: 'runs its arguments as shell text', special: 'eval' },
  source: { class: U, why: 'runs a file in the current shell' },
  '.': { class: U, why: 'runs a file in the current shell' },
  python: { class: U, why: 'runs a program in an interpreter' },
  python2: { class: U, why: 'runs a program in an interpreter' },
  python3: { class: U, why: 'runs a program in an interpreter' },
  perl: { class: U, why: 'runs a program in an interpreter' },
  ruby: { class: U, why: 'runs a program in an interpreter' },
  node: { class: U, why: 'runs a program in an interpreter' },
  php: { class: U, why: 'runs a program in an interpreter' },
  lua: { class: U, why: 'runs a program in an interpreter' },
  tclsh: { class: U, why: 'runs a program in an interpreter' },
  expect: { class: U, why: 'runs a program in an interpreter' },
  ssh: { class: U, why: 'runs a command on another host' },
  scp: { class: U, why: 'copies files to or from another host' },
  sftp: { class: U, why: 'copies files to or from another host' },
  nc: { class: U, why: 'opens raw network connections' },
  ncat: { class: U, why: 'opens raw network connections' },
  socat: { class: U, why: 'opens raw network connections' },
  openssl: { class: U, why: 'many subcommands write files (not classified further)' },
  vi: { class: U, why: 'an interactive editor' },
  vim: { class: U, why: 'an interactive editor' },
  nano: { class: U, why: 'an interactive editor' },
  emacs: { class: U, why: 'an interactive editor' },

  break: readOnly('leaves a loop'),
  continue: readOnly('continues a loop'),
  exit: readOnly('ends the shell'),
  return: readOnly('returns from a function'),
  wait: readOnly('waits for background jobs'),
  jobs: readOnly('lists background jobs'),
  shift: readOnly('shifts positional parameters'),

  // Shell state: changes how everything after it runs.
  umask: { class: U, why: 'changes the permissions of files created later' },
  ulimit: { class: U, why: 'changes resource limits of the shell' },
  alias: { class: U, why: 'defines an alias (changes what later names run)' },
  unalias: { class: U, why: 'changes aliases' },
  shopt: { class: U, why: 'changes shell options' },
  enable: { class: U, why: 'changes shell builtins' },
  hash: { class: U, why: 'changes where the shell finds programs' },
  trap: { class: U, why: 'runs commands on signals' },
  export: { class: U, why: 'changes the environment of later commands' },
  declare: { class: U, why: 'declares variables (their values can run code)' },
  typeset: { class: U, why: 'declares variables (their values can run code)' },
  local: { class: U, why: 'declares variables (their values can run code)' },
  readonly: { class: U, why: 'declares variables' },
  unset: { class: U, why: 'unsets variables or functions' },
  coproc: { class: U, why: 'runs a background coprocess' },
  mapfile: { class: U, why: 'reads into an array' },
  readarray: { class: U, why: 'reads into an array' },
  let: { class: U, why: 'evaluates arithmetic (it can run code in array subscripts)' },
};

/** Names matched by prefix (versioned or suffixed binaries). */
export const PROGRAM_PREFIXES: readonly { prefix: string; rule: ProgramRule }[] = [
  { prefix: 'mkfs', rule: { class: P, why: 'formats a file system' } },
  { prefix: 'fsck', rule: { class: P, why: 'repairs a file system' } },
  { prefix: 'python', rule: { class: U, why: 'runs a program in an interpreter' } },
  { prefix: 'pip', rule: { class: P, why: 'installs Python packages' } },
];

/** Where a program named by absolute path may live and still be looked up by its basename. */
export const SYSTEM_PROGRAM_DIRS: readonly string[] = ['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin'];

/**
 * Environment variables a command may be given (`LC_ALL=C sort f`, `env TZ=UTC date`): they only
 * change formatting. Any other (PATH, LD_PRELOAD, BASH_ENV, IFS, PAGER, ...) can change what runs.
 */
export const HARMLESS_ENV = /^(LANG|LANGUAGE|LC_[A-Z]+|TZ|COLUMNS|LINES|NO_COLOR|TERM|SYSTEMD_COLORS)$/;

/** System locations: writing here (or to an unknown place) is privileged. */
export const SYSTEM_PATHS: readonly string[] = [
  '/etc',
  '/boot',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/opt',
  '/var/lib',
  '/var/spool',
  '/var/log',
  '/var/cache',
  '/var/backups',
  '/root',
  '/dev',
  '/proc',
  '/sys',
  '/run',
];

/** Output targets that write nothing anyone keeps. */
export const HARMLESS_WRITE_TARGETS: readonly string[] = ['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/tty'];

/** Files in a home directory that run code or grant access when written (relative to the home). */
export const SENSITIVE_HOME_FILES: readonly string[] = [
  '.ssh',
  '.bashrc',
  '.bash_profile',
  '.bash_login',
  '.bash_logout',
  '.profile',
  '.zshrc',
  '.zprofile',
  '.zshenv',
  '.zlogin',
  '.kshrc',
  '.inputrc',
  '.config/systemd',
  '.config/autostart',
  '.config/git',
  '.config/fish',
  '.gitconfig',
  '.gnupg',
  '.netrc',
  '.pam_environment',
  '.docker',
  '.kube',
  '.aws',
  '.local/bin',
  '.npmrc',
  '.pypirc',
  '.mcp-remote-exec',
  'bin',
];
