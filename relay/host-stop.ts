/**
 * How a command is wrapped on the host so that it can be stopped whole, by the relay or, when the
 * relay is gone, by the host itself. POSIX sh only (dash, bash, ash, ksh): these scripts run in the
 * SSH user's login shell and inside containers.
 *
 * A run is known on the host by three things:
 * - its session and process group: sshd makes the login shell a session and group leader, and the
 *   wrapper prints that shell's PID (the group id) between marker bytes on stdout, with the inode of
 *   its output pipe;
 * - a marker in the environment, MRE_RUN=<random id>, exported to everything the command starts,
 *   so `setsid` / `nohup` children that leave the group are still found (in /proc/PID/environ);
 * - the channel's output pipe: a process that cleared its environment (`env -i`) but still writes
 *   to the command's stdout or stderr is found by its fd 1 or 2, whose /proc link names that pipe.
 * and, found from those, their descendants.
 *
 * Not found: processes of another user (setuid programs, sudo run by the command itself) and
 * processes that left the session, cleared their environment and let go of the output after their
 * parent ended. The README says so. A run with `sudo: true` (sudo.ts) is stopped as root instead:
 * its root shell marks itself again and starts its own watchdog, and the relay's stop runs under sudo.
 *
 * A watchdog started by the wrapper (its own `sh`, outside the marker, output to /dev/null) gives
 * the host its own deadline: at timeout + slack it runs the same stop script the relay would, so a
 * command whose relay died does not outlive its timeout by more than a few seconds. It ends within
 * a second of the run ending (its parent gone and nothing left carrying the marker). So with the
 * relay gone, a process that cleared its environment and outlived its parent is not stopped by the
 * host's deadline (the relay's stop still finds it by the output pipe).
 */
import { randomBytes } from 'node:crypto';
import { quoteShellWord } from '../shared/shell-quote.ts';
import { SUDO_STARTED_PRINTF, underSudo, type SudoMode } from './sudo.ts';

export const MARKER = '\x1emre-pgid=';
export const MARKER_END = '\x1e\n';
/** Prefix of each line the stop script prints for a process it could not stop. */
export const LEFT_PREFIX = 'mre-left ';
/** The line the stop script prints once it has found the run and sent TERM. */
export const TERM_SENT = 'mre-term';
/** Processes named in an answer at most. */
export const MAX_LEFT_REPORTED = 20;
/** The host watchdog fires this long after the relay's deadline, so the relay normally stops (and reports) first. */
export const WATCHDOG_SLACK_S = 2;

/** printf format that prints the marker around "PGID OUTPUT" (octal escapes: no raw control bytes in the command). */
const MARKER_FORMAT = `${MARKER.replace('\x1e', '\\036')}%s %s${MARKER_END.replace('\x1e', '\\036').replace('\n', '\\n')}`;

export interface StopSettings {
  /** Steps of 0.1 s between TERM and KILL. */
  graceSteps: number;
}

export const DEFAULT_STOP: StopSettings = { graceSteps: 20 };

/** A fresh run id: 16 hex digits, safe in a shell word and unguessable by other runs. */
export function newRunId(): string {
  return randomBytes(8).toString('hex');
}

/** What the wrapper reported about the run: its group id and the identity of its output pipe. */
export interface RunIdentity {
  pgid: number;
  /**
   * The inode number of the run's output pipe (or socket), e.g. "123456"; null when the host's /proc
   * does not say; "tty" for a pty run, whose output is a terminal: no pipe to look for (a devpts
   * inode number could equal an unrelated pipe's), the terminal's hangup on close is the lever instead.
   */
  output: string | null;
}

export function parseMarker(text: string): RunIdentity | null {
  const match = /^([0-9]{1,10}) ([0-9]{1,20}|tty)?$/.exec(text);
  if (!match?.[1]) return null;
  const pgid = Number(match[1]);
  return pgid > 1 ? { pgid, output: match[2] ?? null } : null;
}

export function checkRunId(runId: string): string {
  if (!/^[0-9a-f]{16}$/.test(runId)) throw new Error('a run id is 16 hex digits');
  return runId;
}

/**
 * Shell that sets `variable` to the inode of process `pid`'s fd `fd` (1: the run's output pipe), read
 * from /proc/PID/fdinfo/FD with builtins only (empty where /proc or the field is missing). No fork: a
 * readlink before every command cost ~1.5 ms of each call.
 */
function inodeOf(pid: string, variable: string, fd = 1): string {
  // Not a shell's own fd 0: the loop reads with fdinfo as its stdin, which fdinfo/0 would then describe.
  return `${variable}=; [ -r "/proc/${pid}/fdinfo/${fd}" ] && while read -r mre_k mre_v; do [ "$mre_k" = ino: ] && ${variable}=$mre_v; done <"/proc/${pid}/fdinfo/${fd}"; `;
}

/**
 * Shell functions shared by the stop script and the watchdogs (these and the job scripts of
 * host-jobs.ts). `scan` sets $t to the PIDs of the run (group g or session g, the marker r in the
 * environment, or fd 1/2 writing to the output pipe o, or, for a background job, to the files
 * $jd/out or $jd/err), then adds their descendants; it skips itself ($me), its own helpers (children of $me)
 * and zombies. Other users' processes are skipped: their environ and fd are unreadable.
 * Two helper processes per scan (one grep over every environ, one ls over every fd 1 and 2), not
 * one per process: a root login may see thousands of processes.
 */
export const SCAN_FUNCTIONS =
  `st() { read -r s 2>/dev/null <"/proc/$1/stat" || return 1; s=\${s##*") "}; }; ` +
  `live() { st "$1" || return 1; set -- $s; [ "$1" != Z ]; }; ` +
  // PIDs whose environment holds the marker (substring: the id is 64 random bits).
  `marked() { m=; for f in $(grep -lF "$r" /proc/[0-9]*/environ 2>/dev/null); do f=\${f#/proc/}; m="$m \${f%/environ}"; done; }; ` +
  // PIDs writing to the output: a pipe's write end (sshd holds the read end, same inode), or the socket itself.
  `writers() { wr=; [ -n "$o$jd" ] || return 0; ` +
  // set -f while splitting each line: a target such as "pipe:[123]" is also a glob, which a file
  // named "pipe:1" in the working directory (the SSH user's home) would otherwise replace.
  `wr=$(LC_ALL=C ls -l /proc/[0-9]*/fd/1 /proc/[0-9]*/fd/2 2>/dev/null | { set -f; while read -r l; do set -- $l; ` +
  // A job's output is a file in its directory (a path without blanks: the relay config refuses them).
  `if [ -n "$jd" ]; then case "\${11}" in "$jd/out"|"$jd/err") f=\${9#/proc/}; printf ' %s' "\${f%%/*}";; esac; continue; fi; ` +
  `x=\${11#*[}; [ "\${x%]}" = "$o" ] || continue; case "$1:\${11}" in l-wx*:pipe:*|l*:socket:*) f=\${9#/proc/}; printf ' %s' "\${f%%/*}";; esac; done; }); }; ` +
  `scan() { t=; pairs=; marked; writers; for d in /proc/[0-9]*; do p=\${d#/proc/}; [ "$p" = "$me" ] && continue; [ -r "$d/environ" ] || continue; st "$p" || continue; set -- $s; ` +
  `[ "$1" = Z ] && continue; [ "$2" = "$me" ] && continue; ` +
  `case " $m $wr " in *" $p "*) t="$t $p"; continue;; esac; ` +
  `if [ "$3" = "$g" ] || [ "$4" = "$g" ]; then t="$t $p"; else pairs="$pairs $p:$2"; fi; done; ` +
  `n=0; while [ "$n" -lt 16 ]; do a=; for x in $pairs; do c=\${x%:*}; case " $t " in *" $c "*) continue;; esac; case " $t " in *" \${x#*:} "*) t="$t $c"; a=1;; esac; done; [ -z "$a" ] && break; n=$((n+1)); done; }; ` +
  `anylive() { kill -0 -"$g" 2>/dev/null && return 0; for p in $t; do live "$p" && return 0; done; return 1; }; `;

function variables(pgid: number, runId: string, output: string | null): string {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`refusing to signal process group ${pgid}`);
  if (output !== null && !/^([0-9]{1,20}|tty)$/.test(output)) throw new Error('an output pipe is named by its inode number (or "tty")');
  // Hosts whose fdinfo has no inode (old kernels) printed none: read it off the group leader now.
  return `g=${pgid}; r=${quoteShellWord(`MRE_RUN=${checkRunId(runId)}`)}; jd=; o=${output ?? ''}; [ -n "$o" ] || { ${inodeOf('$g', 'o')}}; me=$$; `;
}

/**
 * TERM to the run, KILL after the grace period to whatever is left (found again: it may have
 * forked meanwhile). With `report`, then prints one `mre-left PID COMMAND` line per process of the
 * run still alive. No "--" to kill: dash's kill refuses it; "-PGID" after the signal is a group.
 */
export function stopBody(settings: StopSettings, report: boolean): string {
  return (
    // The group first (the scan can take a moment on a busy host), then what the scan finds outside it.
    `kill -TERM -"$g" 2>/dev/null; scan; [ -n "$t" ] && kill -TERM $t 2>/dev/null; echo ${TERM_SENT}; ` +
    `i=0; while [ "$i" -lt ${settings.graceSteps} ] && anylive; do sleep 0.1; i=$((i+1)); done; ` +
    `scan; [ -n "$t" ] && kill -KILL $t 2>/dev/null; kill -KILL -"$g" 2>/dev/null; ` +
    (report
      ? `i=0; while [ "$i" -lt 5 ] && anylive; do sleep 0.1; i=$((i+1)); done; scan; k=0; ` +
        `for p in $t; do live "$p" || continue; k=$((k+1)); [ "$k" -gt ${MAX_LEFT_REPORTED} ] && break; c=; read -r c <"/proc/$p/comm" 2>/dev/null; printf '${LEFT_PREFIX}%s %s\\n' "$p" "$c"; done; `
      : '') +
    'exit 0'
  );
}

/** The stop script alone, for `sh -c` on the host or inside a container. */
function stopScript(identity: RunIdentity, runId: string, settings: StopSettings): string {
  return variables(identity.pgid, runId, identity.output) + SCAN_FUNCTIONS + stopBody(settings, true);
}

/**
 * What the relay runs on a second channel to stop a run (exit 0 whatever happened). Under `sh`,
 * not the login shell: zsh, for one, does not split unquoted variables, which the script relies on.
 */
export function stopCommand(identity: RunIdentity, runId: string, settings: StopSettings = DEFAULT_STOP): string {
  return `exec sh -c ${quoteShellWord(stopScript(identity, runId, settings))}`;
}

/**
 * The stop for a run under sudo: the stop script as root, through the same door as the run
 * (underSudo: the password line on this channel's stdin, or sudo -n), since the SSH user cannot
 * signal root's processes. What it may reach is still named only by this run's own marker (group,
 * MRE_RUN id, output pipe): nothing from the command's input or output. If sudo refuses it (the
 * password changed since), the SSH user's stop runs instead.
 */
export function sudoStopCommand(identity: RunIdentity, runId: string, sudo: SudoMode, settings: StopSettings = DEFAULT_STOP): string {
  const script = stopScript(identity, runId, settings);
  return `${underSudo(script, '', sudo)} || exec sh -c ${quoteShellWord(script)}`;
}

/**
 * The host-side deadline, as the text of an `sh -c` script taking the wrapper's PID ($1), the
 * output pipe ($2), the seconds to wait ($3) and the run id ($4). It is in the run's process group,
 * so the relay's stop ends it with the rest; it ignores HUP (the relay's connection dropping). It
 * ends when its parent has ended and nothing carries the run's marker any more, and otherwise stops
 * the run at the deadline, ignoring TERM from then on (it signals its own group).
 */
function watchdogScript(settings: StopSettings): string {
  return (
    `trap '' HUP INT; ` +
    // The id is 16 hex digits from the relay; anything else means a broken start: do nothing.
    `case "$4" in *[!0-9a-f]*|'') exit 0;; esac; ` +
    watchdogCountdown(settings)
  );
}

/** The watchdog's count from the run's start to its deadline, and the stop at the deadline (watchdogScript's arguments). */
function watchdogCountdown(settings: StopSettings): string {
  return (
    `g=$1; r="MRE_RUN=$4"; jd=; o=$2; [ -n "$o" ] || { ${inodeOf('$g', 'o')}}; me=$$; ` +
    SCAN_FUNCTIONS +
    // Once the leader is gone, stay only while something of the run still carries its marker (every
    // child inherits it, setsid and nohup ones too). One grep, not the output-pipe scan: that scan
    // (an ls of every process's fds) made each watchdog cost tens of ms of CPU as its run ended,
    // halving throughput under many concurrent commands.
    // It looks only after a second: a child the command forked just before its shell ended carries
    // the marker only once it has exec'd (/proc/PID/environ is the environment it was exec'd with),
    // and a look in between, at once, let such a child outlive the deadline.
    `w=0; while [ "$w" -lt "$3" ]; do sleep 1; w=$((w+1)); if ! kill -0 "$g" 2>/dev/null; then marked; [ -n "$m" ] || exit 0; fi; done; ` +
    `trap '' TERM; ` +
    stopBody(settings, false)
  );
}

/**
 * A ready shell's watchdog (readyShellCommand), started with the shell, ahead of its run, with the
 * arguments of watchdogScript and a fifth: the inode of the shell's stdin, the channel. It counts
 * nothing while that is still the shell's stdin: the shell swaps it for /dev/null once it has read
 * its whole run (and the command may swap it again, or the shell end), and from the next one-second
 * tick the watchdog counts down as watchdogScript does. So nothing signals it and nothing waits for
 * it: the command starts no process before its own, and the shell does not wait for this one to
 * start. The deadline falls up to a second later than a fresh channel's watchdog's. It ends when the
 * shell ends without a run (nothing marked), or on the shell's TERM (its run needs other seconds, or
 * none came), and ignores USR1 and USR2, which a command may send its whole group.
 */
function armedWatchdogScript(settings: StopSettings): string {
  return (
    `trap '' HUP INT USR1 USR2; ` +
    `case "$4" in *[!0-9a-f]*|'') exit 0;; esac; case "$5" in *[!0-9]*|'') exit 0;; esac; ` +
    `while :; do sleep 1; ${inodeOf('$1', 'mre_j', 0)}[ "$mre_j" = "$5" ] || break; done; ` +
    watchdogCountdown(settings)
  );
}

/** Seconds the host watchdog waits: the relay's deadline and some slack, so the relay normally stops (and reports) first. */
function watchdogSeconds(timeoutMs: number): number {
  return Math.ceil(timeoutMs / 1000) + WATCHDOG_SLACK_S;
}

/** Starts the watchdog in the background; `seconds` and `runId` are shell words (a number, a variable). */
function watchdogStart(settings: StopSettings, pidVariable: string, seconds: string, runId: string): string {
  return `sh -c ${quoteShellWord(watchdogScript(settings))} mre-watchdog "${pidVariable}" "$mre_o" ${seconds} ${runId} </dev/null >/dev/null 2>&1 & `;
}

/** What the command's stdin is: empty (/dev/null), or the channel's terminal (a pty run, where nothing is ever typed). */
export type WrappedStdin = 'empty' | 'terminal';

/**
 * The command as the login shell runs it: print the marker, start the watchdog (before the marker
 * is exported, so it carries none), export the marker, run the command in a subshell with stdin
 * /dev/null (or, with a pty, the terminal: `tty` and programs that insist on one look at stdin).
 * The subshell parses the command exactly as `ssh host 'cmd'` would; its exit status is the
 * shell's, and its output is untouched (the watchdog writes nowhere).
 */
export function wrapCommand(
  command: string,
  runId: string,
  timeoutMs: number,
  settings: StopSettings = DEFAULT_STOP,
  stdin: WrappedStdin = 'empty',
  sudo: SudoMode | null = null,
): string {
  // Under sudo (relay/sudo.ts) the command runs in a root shell (rootStart) that gets the login
  // shell's group id and output pipe ("$$" "$mre_o", still set here) for its own watchdog; sudo
  // wants no terminal, so a pty run never comes with sudo (operations.ts refuses the pair).
  const run = sudo
    ? `unset mre_k mre_v; ${underSudo(rootStart(runId, timeoutMs, settings), `"$$" "$mre_o" ${quoteShellWord(command)}`, sudo)} )`
    : `unset mre_o mre_k mre_v; eval ${quoteShellWord(command)} )` + (stdin === 'empty' ? ' </dev/null' : '');
  return (
    // "tty" never equals a pipe's inode: the scans look for no output pipe, nor read one off the leader.
    (stdin === 'empty' ? inodeOf('$$', 'mre_o') : 'mre_o=tty; ') + markedStart(settings, String(watchdogSeconds(timeoutMs)), checkRunId(runId)) + `( ${run}`
  );
}

/**
 * What the login shell does before the command, given the watchdog's seconds and the run id as
 * shell words: print the marker, start the watchdog (before the marker is exported, so it carries
 * none), export the marker. The command then runs in a subshell, so that a bare `wait` in it waits
 * for its own children, not the watchdog.
 */
function markedStart(settings: StopSettings, seconds: string, runId: string): string {
  return `printf '${MARKER_FORMAT}' "$$" "$mre_o"; ` + watchdogStart(settings, '$$', seconds, runId) + `MRE_RUN=${runId}; export MRE_RUN; `;
}

/** What the relay writes to a ready shell to learn that it still answers, and what the shell answers. */
export const READY_PING = '?\n';
export const READY_ACK = '\x1ek';

/** What a ready shell's watchdog was started for: the run id it looks for and the seconds it gives the run. */
export interface ReadyWatch {
  runId: string;
  seconds: number;
}

/** A watch for the next ready shell, whose run is expected to have `timeoutMs` (the pool guesses from the last run). */
export function readyWatchFor(timeoutMs: number): ReadyWatch {
  return { runId: newRunId(), seconds: watchdogSeconds(timeoutMs) };
}

/** Whether a run with `timeoutMs` can use the watchdog a ready shell started for `watch` (under the watch's run id). */
export function watchFits(watch: ReadyWatch, timeoutMs: number): boolean {
  return watch.seconds === watchdogSeconds(timeoutMs);
}

/**
 * A ready shell: a login shell started ahead of its command on a channel of its own, so that a
 * command costs no channel open and no shell start (two round trips to the host and a process
 * start). It starts its watchdog at once (armedWatchdogScript, for `watch`), not as a child (the
 * run is evaluated in the shell itself, where a bare `wait` must wait for the run's own children
 * only), and without waiting for it to come up. So a run that fits the watch starts no process
 * before the command's own. It answers every ping the relay sends before the run (one as it
 * starts, and another before a run that comes after the shell has waited a while), so the relay
 * knows the connection is alive before it sends anything (a connection that went silent is found
 * without a command on it); then it reads the run
 * (readyShellInput) from stdin and runs it exactly as wrapCommand does, for a run without a
 * terminal or sudo. A run sent with another run id or seconds than the watch's gets a watchdog of
 * its own, as wrapCommand starts one, and a subshell. Its end of input before a whole run is read
 * runs nothing, and ends the watchdog.
 */
export function readyShellCommand(watch: ReadyWatch, settings: StopSettings = DEFAULT_STOP): string {
  const runId = checkRunId(watch.runId);
  if (!Number.isInteger(watch.seconds) || watch.seconds < 1) throw new Error('a watch has a whole number of seconds');
  const end = `{ kill "$mre_w" 2>/dev/null; exit 0; }`;
  return (
    // The output pipe is known before the run: read it while waiting, not after the ping.
    inodeOf('$$', 'mre_o') +
    // The channel's inode, read through a copy of fd 0 (inodeOf's loop reads fdinfo on its own fd 0).
    `exec 8<&0; ${inodeOf('$$', 'mre_i', 8)}exec 8<&-; ` +
    // Where /proc does not give inodes, the watchdog could not see the run start: the run starts its own.
    `mre_w=; [ -n "$mre_o" ] && [ -n "$mre_i" ] && mre_w=$(sh -c ${quoteShellWord(armedWatchdogScript(settings))} mre-watchdog "$$" "$mre_o" ${watch.seconds} ${runId} "$mre_i" </dev/null >/dev/null 2>&1 & echo "$!"); ` +
    `case "$mre_w" in *[!0-9]*|'') mre_w=;; esac; ` +
    // Each ping line is answered, as many as come; the first other line is the run's id and seconds.
    `mre_l=; while IFS= read -r mre_l && [ "$mre_l" = '${READY_PING.trimEnd()}' ]; do printf '${READY_ACK.replace('\x1e', '\\036')}'; mre_l=; done; ` +
    `mre_r=\${mre_l%% *}; mre_s=\${mre_l#"$mre_r"}; mre_s=\${mre_s# }; ` +
    `case "$mre_r" in *[!0-9a-f]*|'') ${end};; esac; case "$mre_s" in *[!0-9]*|'') ${end};; esac; ` +
    // The command's lines each come after a "." (so none is empty), and an empty line ends them.
    `mre_c=; mre_n=; mre_ok=; while IFS= read -r mre_l; do [ -z "$mre_l" ] && { mre_ok=1; break; }; ` +
    `mre_c="$mre_c$mre_n\${mre_l#.}"; mre_n='\n'; done; [ -n "$mre_ok" ] || ${end}; ` +
    // The whole run is read: the channel's input is no longer the shell's (nor the run's), which the watchdog watches for.
    `exec </dev/null; ` +
    // Another watch than this run's, or its watchdog gone: a watchdog of its own, and the run in a subshell (which a `wait` in it needs then).
    `if [ -z "$mre_w" ] || [ "$mre_r $mre_s" != "${runId} ${watch.seconds}" ] || ! kill -0 "$mre_w" 2>/dev/null; then ` +
    `kill "$mre_w" 2>/dev/null; ${markedStart(settings, '"$mre_s"', '"$mre_r"')}` +
    `( unset mre_o mre_i mre_k mre_v mre_l mre_n mre_ok mre_r mre_s mre_w; eval "unset mre_c\n$mre_c" ); exit; fi; ` +
    `printf '${MARKER_FORMAT}' "$$" "$mre_o"; MRE_RUN=$mre_r; export MRE_RUN; ` +
    // The command's text is exactly what was sent; it is the only thing evaluated after unsetting these.
    `unset mre_o mre_i mre_k mre_v mre_l mre_n mre_ok mre_r mre_s mre_w; eval "unset mre_c\n$mre_c"`
  );
}

/** The run as a ready shell reads it: the run id and the watchdog's seconds, then the command's lines. */
export function readyShellInput(command: string, runId: string, timeoutMs: number): string {
  const lines = command.split('\n').map((line) => `.${line}\n`);
  return `${checkRunId(runId)} ${watchdogSeconds(timeoutMs)}\n${lines.join('')}\n`;
}

/**
 * The first thing run as root under sudo, an `sh -c` script taking the login shell's PID ($1), the
 * output pipe ($2) and the command ($3). It prints SUDO_STARTED on stderr (what came before is
 * sudo's), starts a root watchdog (the SSH user's cannot signal root's processes), then marks
 * itself again with MRE_RUN (sudo's env_reset clears it) so that the root stop (sudoStopCommand)
 * finds the command's processes wherever they go, and runs the command with /dev/null as stdin:
 * with NOPASSWD, sudo leaves the password line unread in the pipe, and the command must never read
 * it. The watchdog starts with an empty environment but PATH: it must carry no marker, or it would
 * wait for itself until the deadline, and sudo's SUDO_COMMAND (this script's text) names the marker.
 */
function rootStart(runId: string, timeoutMs: number, settings: StopSettings): string {
  return (
    `${SUDO_STARTED_PRINTF} >&2; ` +
    `env -i PATH="$PATH" sh -c ${quoteShellWord(watchdogScript(settings))} mre-watchdog "$1" "$2" ${watchdogSeconds(timeoutMs)} ${checkRunId(runId)} </dev/null >/dev/null 2>&1 & ` +
    `MRE_RUN=${checkRunId(runId)}; export MRE_RUN; exec </dev/null; shift 2; eval "$1"`
  );
}

/**
 * A command inside a Proxmox container: `pct exec ID -- bash -c SCRIPT`. The container's processes
 * live in their own namespaces, so signalling the SSH session on the host does not reach them.
 * The script runs the command as a background job with job control on (`set -m`), which gives the
 * job its own process group inside the container; the job prints that group's id and output pipe
 * first, starts the same watchdog inside the container, and a stop runs the stop script there.
 */
export function containerCommand(ctid: string, command: string, runId: string, timeoutMs: number, settings: StopSettings = DEFAULT_STOP): string {
  // Job control only while the job starts: left on, bash would also report the job's end on stderr.
  const job =
    `mre_b=$BASHPID; ` +
    inodeOf('$mre_b', 'mre_o') +
    `printf '${MARKER_FORMAT}' "$mre_b" "$mre_o"; ` +
    watchdogStart(settings, '$mre_b', String(watchdogSeconds(timeoutMs)), checkRunId(runId)) +
    `MRE_RUN=${checkRunId(runId)}; export MRE_RUN; unset mre_b mre_o mre_k mre_v; eval ${quoteShellWord(command)}`;
  const script = `set -m; ( ${job} ) </dev/null & set +m; wait "$!"`;
  return ['pct', 'exec', ctid, '--', 'bash', '-c', script].map(quoteShellWord).join(' ');
}

export function containerStopCommand(ctid: string, identity: RunIdentity, runId: string, settings: StopSettings = DEFAULT_STOP): string {
  return ['pct', 'exec', ctid, '--', 'sh', '-c', stopScript(identity, runId, settings)].map(quoteShellWord).join(' ');
}

/** The processes a stop script reported as still alive ("PID COMMAND"), bounded. */
export function parseLeft(output: string): string[] {
  const left: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith(LEFT_PREFIX)) continue;
    const match = /^([0-9]{1,10}) (.{0,64})$/.exec(line.slice(LEFT_PREFIX.length));
    if (!match?.[1]) continue;
    // comm is the host's text: keep it printable.
    left.push(`${match[1]} (${(match[2] ?? '').replace(/[^\x20-\x7e]/g, '?')})`);
    if (left.length >= MAX_LEFT_REPORTED) break;
  }
  return left;
}
