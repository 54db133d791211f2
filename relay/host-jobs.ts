/**
 * Background jobs on the host: the shell scripts that start, read, page, cancel and delete a job,
 * and the parsers of what they print. POSIX sh only (these run under `sh -c`, on the host or
 * inside a container through `pct exec`), every word quoted; the caller's command travels as one
 * quoted argument and is written to a file, never pasted into script text.
 *
 * On-host layout, under a base directory (default ~/.mcp-remote-exec/jobs, 0700, owned by the SSH
 * user, not a symbolic link), one private directory per job, made with `mkdir -m 700` (which fails
 * when it exists: an id is never reused):
 *
 *   <base>/<jobId>/cmd        the command, as given
 *   <base>/<jobId>/owner      a tag of the user who started it ("-" in stdio mode), for the per-user share
 *   <base>/<jobId>/meta       "RUNID TIMEOUT_MS KEEP_BYTES STARTED_MS"
 *   <base>/<jobId>/pid        "PGID STARTTIME" (the runner's PID = its group = its session; STARTTIME
 *                             is field 22 of /proc/PID/stat, so a reused PID is not taken for the job)
 *   <base>/<jobId>/out, err   the command's stdout and stderr, appended (O_APPEND)
 *   <base>/<jobId>/drop.out, drop.err   bytes dropped from the start of that stream (absent: 0)
 *   <base>/<jobId>/status     "RC ENDED_MS", written when the command ends (tmp + mv)
 *   <base>/<jobId>/stopped    "cancel|timeout MS", written before a stop (tmp + mv)
 *   <base>/<jobId>/left       the stop's report: one "mre-left PID COMM" line per survivor
 *   <base>/<jobId>/stray      after the command ended: processes it started that still run (setsid,
 *                             nohup, `&` children), one "PID COMM" line each, kept by the watchdog
 *   <base>/<jobId>/nopunch    this filesystem cannot punch holes: output is kept whole
 *
 * The runner (`setsid sh -c RUNNER`) leads its own session and process group with stdin /dev/null
 * and no tie to the SSH channel, so the job outlives the channel, the connection and the relay.
 * It runs the command under the login shell (as a synchronous exec does) with the run marker
 * MRE_RUN in the environment, so the stop machinery of host-stop.ts finds setsid and nohup
 * children too. A job watchdog (its own session, started before the marker is exported) enforces
 * the deadline with that same stop and trims output beyond keepBytes.
 */
import { JOB_TAIL_BYTES, MAX_JOB_TIMEOUT_SECONDS } from '../shared/limits.ts';
import type { JobHostState } from '../shared/jobs.ts';
import { JOB_ID_PATTERN } from '../shared/jobs.ts';
import type { JobReport } from '../shared/protocol.ts';
import { quoteShellWord } from '../shared/shell-quote.ts';
import { checkRunId, DEFAULT_STOP, MAX_LEFT_REPORTED, parseLeft, SCAN_FUNCTIONS, stopBody, type StopSettings } from './host-stop.ts';

/** Where jobs live when the relay config names no `jobs_dir`: in the SSH user's home. */
export const DEFAULT_JOBS_DIR = '~/.mcp-remote-exec/jobs';

export interface JobTimings {
  /** Seconds between the job watchdog's looks (deadline, output trim, the runner's end). */
  watchdogStepS: number;
  stop: StopSettings;
}

/** Five seconds: a job runs up to 24 h, and each look costs a few forks. Tests use 1. */
export const DEFAULT_JOB_TIMINGS: JobTimings = { watchdogStepS: 5, stop: DEFAULT_STOP };

/** A job's stopped-but-no-pid-yet window: the runner writes its pid within milliseconds of the start. */
export const START_GRACE_MS = 30_000;

/** Punch-hole granularity: drops are whole 4 KiB blocks, so the file system really frees them. */
const DROP_ALIGN = 4096;

/** A jobs_dir: absolute or under ~/, no blanks (the stop's fd scan splits `ls -l` lines on them). */
export function checkJobsDir(dir: string): string {
  if (!/^(~|~\/[^\s]*|\/[^\s]*)$/.test(dir) || dir.includes('\0') || /(^|\/)\.\.(\/|$)/.test(dir)) {
    throw new Error(`a jobs directory is an absolute path or one under ~/, without blanks or "..": ${JSON.stringify(dir)}`);
  }
  return dir;
}

function checkJobId(jobId: string): string {
  if (!JOB_ID_PATTERN.test(jobId)) throw new Error('a job id is 32 lowercase hex digits');
  return jobId;
}

function checkOwnerTag(tag: string): string {
  if (!/^[0-9a-f]{16}$/.test(tag)) throw new Error('an owner tag is 16 lowercase hex digits');
  return tag;
}

function count(value: number, what: string, max: number): string {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${what} out of range: ${value}`);
  return String(value);
}

/**
 * Shell functions of every job script. `base` expands a leading ~ and checks the base directory
 * (sets $b, or prints a refusal and exits); `now` sets $t to the host's epoch ms; `alive` reads the
 * pid file (sets $g $gs) and says whether that very process still runs (same start time, not a
 * zombie); `ours` is false when PID $g now belongs to another process (the group is then left
 * alone: only the marker and the output files find the job); `report` prints the job's state frame.
 */
const JOB_FUNCTIONS =
  'umask 077; ' +
  SCAN_FUNCTIONS +
  `now() { t=$(date +%s%3N 2>/dev/null); case "$t" in ''|*[!0-9]*) t=$(( $(date +%s) * 1000 ));; esac; }; ` +
  `base() { b=$1; case "$b" in '~') b=$HOME;; '~/'*) b="$HOME/\${b#"~/"}";; esac; ` +
  `if [ -L "$b" ]; then echo "mre-job refused symlink"; exit 0; fi; ` +
  `if [ -d "$b" ] && [ ! -O "$b" ]; then echo "mre-job refused owner"; exit 0; fi; }; ` +
  `alive() { g=; gs=; [ -r "$1/pid" ] && read -r g gs <"$1/pid"; [ -n "$g" ] || return 1; st "$g" || return 1; set -- $s; [ "$1" != Z ] && [ "\${20}" = "$gs" ]; }; ` +
  // A start does not wait for its runner's pid: a job without one counts as running for
  // START_GRACE_MS after its meta's start time (as its status says), for every script that asks.
  // late: that time has passed (or the meta cannot say); a runner that comes up then runs nothing.
  `late() { sm=; [ -r "$1/meta" ] && read -r sx1 sx2 sx3 sm <"$1/meta"; case "$sm" in ''|*[!0-9]*) return 0;; esac; now; [ $((t - sm)) -ge ${START_GRACE_MS} ]; }; ` +
  // pending: its runner may still come up; starting: and will run the command (no cancel came first).
  `pending() { [ -e "$1/pid" ] && return 1; ! late "$1"; }; ` +
  `starting() { pending "$1" && [ ! -f "$1/stopped" ]; }; ` +
  `running() { alive "$1" || starting "$1"; }; ` +
  `ours() { [ -n "$g" ] || return 1; st "$g" || return 0; set -- $s; [ "\${20}" = "$gs" ]; }; ` +
  `size() { sz=$(wc -c <"$1/$2" 2>/dev/null) || sz=0; sz=$((sz + 0)); dr=0; [ -r "$1/drop.$2" ] && read -r dr <"$1/drop.$2"; case "$dr" in ''|*[!0-9]*) dr=0;; esac; }; ` +
  `report() { [ -d "$1" ] || { echo "mre-job absent"; return 0; }; echo "mre-job present"; ` +
  `for f in meta pid status stopped; do l=; [ -r "$1/$f" ] && read -r l <"$1/$f"; [ -n "$l" ] && printf '%s %s\\n' "$f" "$l"; done; ` +
  `alive "$1" && echo "alive 1"; ` +
  `[ -r "$1/left" ] && { echo "left-file"; grep '^mre-left ' "$1/left" | head -n ${MAX_LEFT_REPORTED}; }; ` +
  `[ -r "$1/stray" ] && head -n ${MAX_LEFT_REPORTED} "$1/stray" | while read -r sp sc; do case "$sp" in ''|*[!0-9]*) continue;; esac; live "$sp" && printf 'stray %s %s\\n' "$sp" "$sc"; done; ` +
  `now; echo "now $t"; ` +
  `for x in out err; do size "$1" "$x"; n=$((sz - dr)); [ "$n" -gt ${JOB_TAIL_BYTES} ] && n=${JOB_TAIL_BYTES}; [ "$n" -lt 0 ] && n=0; ` +
  `echo "tail $x $sz $dr $n"; [ "$n" -gt 0 ] && tail -c "$n" "$1/$x"; echo; done; echo "mre-end"; }; `;

/**
 * Output beyond keepBytes: the oldest whole blocks are dropped with `fallocate --punch-hole`, which
 * frees them and keeps every offset where it was (the file's size does not change; the hole reads
 * as NULs, and paging refuses offsets below the dropped count). The count is recorded first, then
 * the hole punched, so a reader never gets zeros for kept bytes. Where punching is not possible
 * (no fallocate, overlayfs, some NFS, tmpfs on old kernels) the fallback is to drop nothing: a
 * truncation would race the writer (bytes appended between the size check and the truncation are
 * lost) and move every offset. So output stays whole and exact there, and disk use grows past
 * keepBytes for the job's lifetime (bounded by its timeout); `nopunch` records it.
 */
const TRIM =
  `trim() { [ -f "$d/nopunch" ] && return 0; for x in out err; do size "$d" "$x"; [ $((sz - dr)) -gt "$keep" ] || continue; ` +
  `n=$(( (sz - keep) / ${DROP_ALIGN} * ${DROP_ALIGN} )); [ "$n" -gt "$dr" ] || continue; ` +
  `printf '%s\\n' "$n" >"$d/drop.$x.tmp" && mv -f "$d/drop.$x.tmp" "$d/drop.$x" || continue; ` +
  `fallocate -p -o 0 -l "$n" "$d/$x" 2>/dev/null && continue; ` +
  `printf '%s\\n' "$dr" >"$d/drop.$x.tmp" && mv -f "$d/drop.$x.tmp" "$d/drop.$x"; : >"$d/nopunch"; return 0; done; }; `;

/**
 * After the command ended, what it started still runs while anything carries the marker ($m from
 * `marked`): recorded in `stray` (tmp + mv) at each step, so status says so and a cancel stops them.
 */
const STRAYS = `strays() { k=0; for p in $m; do k=$((k + 1)); [ "$k" -gt ${MAX_LEFT_REPORTED} ] && break; c=; read -r c <"/proc/$p/comm" 2>/dev/null; printf '%s %s\\n' "$p" "$c"; done >"$d/stray.tmp" && mv -f "$d/stray.tmp" "$d/stray"; }; `;

/**
 * The job watchdog: args DIR PGID STARTTIME RUNID DEADLINE_S STEP_S KEEP. Its own session (so the
 * stop it runs at the deadline, which KILLs the job's group, does not end it), HUP and INT
 * ignored. Each step: trim; once the command has ended (status) or the runner is gone, a last trim,
 * and it leaves when nothing carries the marker. At the deadline: `stopped` = timeout (unless the
 * command already ended or a cancel came first), the stop of host-stop.ts, its report in `left`.
 */
function watchdogScript(stop: StopSettings): string {
  return (
    `trap '' HUP INT; d=$1; g=$2; gs=$3; r="MRE_RUN=$4"; dl=$5; step=$6; keep=$7; o=; jd=$d; me=$$; ` +
    JOB_FUNCTIONS +
    TRIM +
    STRAYS +
    `while :; do if [ -f "$d/status" ] || ! alive "$d"; then trim; marked; [ -n "$m" ] || { rm -f "$d/stray"; exit 0; }; strays; fi; ` +
    `now; [ $((t / 1000)) -ge "$dl" ] && break; trim; ` +
    `w=$((dl - t / 1000)); [ "$w" -gt "$step" ] && w=$step; [ "$w" -lt 1 ] && w=1; sleep "$w"; done; ` +
    `trap '' TERM; wl=; ` +
    `if [ ! -f "$d/status" ] && [ ! -f "$d/stopped" ]; then now; printf 'timeout %s\\n' "$t" >"$d/stopped.tmp" && mv -f "$d/stopped.tmp" "$d/stopped"; wl=1; fi; ` +
    `read -r g gs <"$d/pid"; ours || g=; ` +
    `( ${stopBody(stop, true)} ) >"$d/left.tmp" 2>/dev/null; if [ -n "$wl" ]; then mv -f "$d/left.tmp" "$d/left"; else rm -f "$d/left.tmp"; fi; rm -f "$d/stray"; trim; exit 0`
  );
}

/**
 * The runner: args DIR RUNID DEADLINE_S STEP_S KEEP. Leader of a new session (setsid). Records its
 * PID and start time (and stops there if a cancel came first, or the start grace is over), starts the watchdog (before the
 * marker is exported, so the watchdog carries none), runs the command under the login shell with
 * the marker, stdin /dev/null and the output appended to the job's files, then writes `status`
 * (tmp + mv). Exported for tests, which start one by hand.
 */
export function runnerScript(stop: StopSettings = DEFAULT_STOP): string {
  return (
    `d=$1; rid=$2; dl=$3; step=$4; keep=$5; unset MRE_RUN; ` +
    JOB_FUNCTIONS +
    `st $$ || exit 1; set -- $s; gs=\${20}; printf '%s %s\\n' "$$" "$gs" >"$d/pid.tmp" && mv -f "$d/pid.tmp" "$d/pid" || exit 1; ` +
    // A cancel that came before the pid found nothing to stop: it left its record, and nothing runs.
    // Nor after the start grace: the job reads as lost by then, for good.
    `[ -f "$d/stopped" ] && exit 0; late "$d" && exit 0; ` +
    `setsid sh -c ${quoteShellWord(watchdogScript(stop))} mre-job-watchdog "$d" "$$" "$gs" "$rid" "$dl" "$step" "$keep" </dev/null >/dev/null 2>&1 & ` +
    `sh_=\${SHELL:-/bin/sh}; [ -x "$sh_" ] || sh_=/bin/sh; ` +
    `MRE_RUN=$rid; export MRE_RUN; "$sh_" -c "$(cat "$d/cmd")" </dev/null >>"$d/out" 2>>"$d/err"; rc=$?; ` +
    `now; printf '%s %s\\n' "$rc" "$t" >"$d/status.tmp" && mv -f "$d/status.tmp" "$d/status"`
  );
}

export interface StartScriptInput {
  jobsDir: string;
  jobId: string;
  runId: string;
  timeoutMs: number;
  keepBytes: number;
  maxJobs: number;
  command: string;
  /**
   * Who starts it, as a tag (hex; none in stdio mode, which has one user), and how many jobs one
   * tag may have running on this host: a share of maxJobs, so one user cannot take every slot.
   */
  owner?: { tag: string; share: number };
}

/**
 * Start: check (or make) the base, count the jobs running there, make the job's directory (an
 * existing id is refused), write cmd and meta, start the runner detached, then print the state
 * frame. Refusals print one `mre-job refused|limit|exists` line: nothing
 * was started.
 */
function startScript(timings: JobTimings): string {
  return (
    `umask 077; id=$2; rid=$3; tm=$4; keep=$5; max=$6; step=$7; cmd=$8; own=$9; share=\${10}; ` +
    JOB_FUNCTIONS +
    `base "$1"; command -v setsid >/dev/null 2>&1 || { echo "mre-job refused nosetsid"; exit 0; }; ` +
    `[ -d "$b" ] || mkdir -p -m 700 "$b" 2>/dev/null; [ -d "$b" ] && [ ! -L "$b" ] || { echo "mre-job refused nodir"; exit 0; }; ` +
    `[ -O "$b" ] || { echo "mre-job refused owner"; exit 0; }; chmod 700 "$b" 2>/dev/null; ` +
    // A job counts while it runs, and while its runner has not yet written its pid (starting).
    `n=0; mine=0; for j in "$b"/*; do [ -d "$j" ] || continue; [ -f "$j/status" ] && continue; running "$j" || continue; n=$((n + 1)); ` +
    `jo=; [ -r "$j/owner" ] && read -r jo <"$j/owner"; [ "$jo" = "$own" ] && mine=$((mine + 1)); done; ` +
    `[ "$n" -ge "$max" ] && { echo "mre-job limit $n"; exit 0; }; ` +
    `[ "$own" != - ] && [ "$mine" -ge "$share" ] && { echo "mre-job share $mine"; exit 0; }; ` +
    `d=$b/$id; mkdir -m 700 "$d" 2>/dev/null || { echo "mre-job exists"; exit 0; }; ` +
    `printf '%s' "$cmd" >"$d/cmd" && printf '%s\\n' "$own" >"$d/owner" && : >"$d/out" && : >"$d/err" || { echo "mre-job refused write"; rm -rf -- "$d"; exit 0; }; ` +
    `now; printf '%s %s %s %s\\n' "$rid" "$tm" "$keep" "$t" >"$d/meta"; dl=$(( t / 1000 + (tm + 999) / 1000 )); ` +
    `setsid sh -c ${quoteShellWord(runnerScript(timings.stop))} mre-job "$d" "$rid" "$dl" "$step" "$keep" </dev/null >/dev/null 2>&1 & ` +
    // No wait for the runner's pid: a job without one reads as running for START_GRACE_MS, and a
    // runner that never came up reads as lost after that. Waiting cost more than the rest of a start.
    `report "$d"`
  );
}

export function startJobArgs(input: StartScriptInput, timings: JobTimings = DEFAULT_JOB_TIMINGS): string[] {
  return [
    'sh',
    '-c',
    startScript(timings),
    'mre-job-start',
    checkJobsDir(input.jobsDir),
    checkJobId(input.jobId),
    checkRunId(input.runId),
    count(input.timeoutMs, 'timeout', MAX_JOB_TIMEOUT_SECONDS * 1000),
    count(input.keepBytes, 'keepBytes', Number.MAX_SAFE_INTEGER),
    count(input.maxJobs, 'maxJobs', 100_000),
    count(timings.watchdogStepS, 'watchdog step', 3600),
    input.command,
    input.owner ? checkOwnerTag(input.owner.tag) : '-',
    count(input.owner?.share ?? input.maxJobs, 'share', 100_000),
  ];
}

export function statusJobArgs(jobsDir: string, jobId: string): string[] {
  return ['sh', '-c', `${JOB_FUNCTIONS}base "$1"; report "$b/$2"`, 'mre-job-status', checkJobsDir(jobsDir), checkJobId(jobId)];
}

/** Page: one `mre-page SIZE DROPPED ENDED` line, then bytes [offset, offset+n) when offset is kept. */
export function pageJobArgs(jobsDir: string, jobId: string, stream: 'stdout' | 'stderr', offset: number, length: number): string[] {
  const script =
    `${JOB_FUNCTIONS}base "$1"; d=$b/$2; x=$3; off=$4; len=$5; [ -d "$d" ] || { echo "mre-job absent"; exit 0; }; ` +
    // Ended is decided before the size is read: a job that ends in between is not called complete early.
    `e=0; [ -f "$d/status" ] && e=1; [ "$e" = 1 ] || running "$d" || e=1; size "$d" "$x"; printf 'mre-page %s %s %s\\n' "$sz" "$dr" "$e"; ` +
    `[ "$off" -ge "$dr" ] && [ "$off" -lt "$sz" ] || exit 0; n=$((sz - off)); [ "$n" -gt "$len" ] && n=$len; ` +
    `tail -c +$((off + 1)) "$d/$x" | head -c "$n"`;
  return [
    'sh',
    '-c',
    script,
    'mre-job-page',
    checkJobsDir(jobsDir),
    checkJobId(jobId),
    stream === 'stdout' ? 'out' : 'err',
    count(offset, 'offset', Number.MAX_SAFE_INTEGER),
    count(length, 'length', 16 * 1024 * 1024),
  ];
}

/**
 * Cancel: unless the command has ended, `stopped` = cancel (when it still runs and no stop came
 * first), then the stop of host-stop.ts over its group (when that PID is still the runner's), its
 * marker and its output files, the report kept in `left`; then the state frame.
 */
export function cancelJobArgs(jobsDir: string, jobId: string, stop: StopSettings = DEFAULT_STOP): string[] {
  const script =
    `${JOB_FUNCTIONS}base "$1"; d=$b/$2; ` +
    `if [ -d "$d" ] && [ ! -f "$d/status" ]; then rid=; read -r rid rest <"$d/meta"; case "$rid" in *[!0-9a-f]*|'') rid=0000000000000000;; esac; ` +
    `r="MRE_RUN=$rid"; o=; jd=$d; me=$$; ` +
    `if running "$d" && [ ! -f "$d/stopped" ]; then now; printf 'cancel %s\\n' "$t" >"$d/stopped.tmp" && mv -f "$d/stopped.tmp" "$d/stopped"; fi; ` +
    // The pid is read again after the record: a runner that wrote it before then is stopped by its
    // group; one that writes it after finds the record and runs nothing (runnerScript).
    `alive "$d"; ours || g=; ( ${stopBody(stop, true)} ) >"$d/left.tmp" 2>/dev/null; mv -f "$d/left.tmp" "$d/left"; ` +
    // Ended, but what it started still runs (stray): stop that too. The group is the runner's, gone
    // now, so only the marker and the output files find them; the state stays the command's own end.
    `elif [ -f "$d/stray" ]; then rid=; read -r rid rest <"$d/meta"; case "$rid" in *[!0-9a-f]*|'') rid=0000000000000000;; esac; ` +
    `r="MRE_RUN=$rid"; o=; jd=$d; me=$$; g=; ( ${stopBody(stop, true)} ) >"$d/left.tmp" 2>/dev/null; mv -f "$d/left.tmp" "$d/left"; rm -f "$d/stray"; fi; report "$d"`;
  return ['sh', '-c', script, 'mre-job-cancel', checkJobsDir(jobsDir), checkJobId(jobId)];
}

/** Cleanup: `mre-cleanup absent|running|removed|failed`; a running job's directory is kept. */
export function cleanupJobArgs(jobsDir: string, jobId: string): string[] {
  const script =
    `${JOB_FUNCTIONS}base "$1"; d=$b/$2; [ -d "$d" ] || { echo "mre-cleanup absent"; exit 0; }; ` +
    // Kept while a runner may still come up, even cancelled: it must find the whole directory (its stop record).
    `if [ ! -f "$d/status" ] && { alive "$d" || pending "$d"; }; then echo "mre-cleanup running"; exit 0; fi; ` +
    `rm -rf -- "$d" && echo "mre-cleanup removed" || echo "mre-cleanup failed"`;
  return ['sh', '-c', script, 'mre-job-cleanup', checkJobsDir(jobsDir), checkJobId(jobId)];
}

/** The argv as the login shell (host) or `pct exec CTID --` (container) runs it, every word quoted. */
export function jobCommandLine(argv: string[], ctid: string | null): string {
  return (ctid === null ? ['exec', ...argv] : ['pct', 'exec', ctid, '--', ...argv])
    .map((word, i) => (ctid === null && i === 0 ? word : quoteShellWord(word)))
    .join(' ');
}

// ---- what the scripts print ----

/** A refusal the start script printed: nothing was started. */
export type StartRefusal = { kind: 'refused'; why: string } | { kind: 'limit'; running: number } | { kind: 'share'; running: number } | { kind: 'exists' };

export function parseStartRefusal(output: Buffer): StartRefusal | null {
  const line = output.subarray(0, Math.min(output.length, 200)).toString('latin1').split('\n')[0] ?? '';
  let match = /^mre-job refused ([a-z]{1,16})$/.exec(line);
  if (match?.[1]) return { kind: 'refused', why: match[1] };
  match = /^mre-job limit ([0-9]{1,9})$/.exec(line);
  if (match?.[1]) return { kind: 'limit', running: Number(match[1]) };
  match = /^mre-job share ([0-9]{1,9})$/.exec(line);
  if (match?.[1]) return { kind: 'share', running: Number(match[1]) };
  if (line === 'mre-job exists') return { kind: 'exists' };
  return null;
}

/** The fields of a state frame, as the host printed them (validated, bounded). */
export interface RawJobState {
  present: boolean;
  startedAt: number | null;
  pid: { pgid: number; startTime: string } | null;
  status: { rc: number; endedAt: number } | null;
  stopped: { kind: 'cancel' | 'timeout'; at: number } | null;
  alive: boolean;
  leftFile: boolean;
  left: string[];
  /** Processes the command started that still ran after it ended (the watchdog's `stray`, still alive). */
  stray: string[];
  now: number;
  streams: Record<'out' | 'err', { size: number; dropped: number; tail: Buffer }>;
}

const MAX_FRAME_LINE = 300;

/**
 * Parse a state frame. Null when it is not one (a chatty startup file, a cut-off answer): the
 * caller says the host's answer could not be read rather than guessing a state.
 */
export function parseJobFrame(output: Buffer): RawJobState | null {
  let at = 0;
  const line = (): string | null => {
    const end = output.indexOf(0x0a, at);
    if (end < 0 || end - at > MAX_FRAME_LINE) return null;
    const text = output.subarray(at, end).toString('latin1');
    at = end + 1;
    return text;
  };
  const first = line();
  if (first === 'mre-job absent') return absentState();
  if (first !== 'mre-job present') return null;
  const raw: RawJobState = { ...absentState(), present: true };
  const leftLines: string[] = [];
  const strayLines: string[] = [];
  for (let guard = 0; guard < 64; guard += 1) {
    const text = line();
    if (text === null) return null;
    if (text === 'mre-end') {
      raw.left = parseLeft(leftLines.join('\n'));
      raw.stray = parseLeft(strayLines.join('\n'));
      return raw;
    }
    let match: RegExpExecArray | null;
    if ((match = /^meta [0-9a-f]{16} [0-9]{1,12} [0-9]{1,20} ([0-9]{1,16})$/.exec(text))) raw.startedAt = Number(match[1]);
    else if ((match = /^pid ([0-9]{1,10}) ([0-9]{1,24})$/.exec(text))) raw.pid = { pgid: Number(match[1]), startTime: match[2] ?? '' };
    else if ((match = /^status ([0-9]{1,3}) ([0-9]{1,16})$/.exec(text))) raw.status = { rc: Number(match[1]), endedAt: Number(match[2]) };
    else if ((match = /^stopped (cancel|timeout) ([0-9]{1,16})$/.exec(text)))
      raw.stopped = { kind: match[1] === 'cancel' ? 'cancel' : 'timeout', at: Number(match[2]) };
    else if (text === 'alive 1') raw.alive = true;
    else if (text === 'left-file') raw.leftFile = true;
    else if (text.startsWith('mre-left ')) leftLines.push(text);
    else if (text.startsWith('stray ')) strayLines.push(`mre-left ${text.slice('stray '.length)}`);
    else if ((match = /^now ([0-9]{1,16})$/.exec(text))) raw.now = Number(match[1]);
    else if ((match = /^tail (out|err) ([0-9]{1,16}) ([0-9]{1,16}) ([0-9]{1,5})$/.exec(text))) {
      const n = Number(match[4]);
      if (n > JOB_TAIL_BYTES || at + n + 1 > output.length || output[at + n] !== 0x0a) return null;
      raw.streams[match[1] === 'out' ? 'out' : 'err'] = { size: Number(match[2]), dropped: Number(match[3]), tail: output.subarray(at, at + n) };
      at += n + 1;
    }
    // Anything else (a status line the job tampered with) is ignored: the fields above stay unset.
  }
  return null;
}

function absentState(): RawJobState {
  const empty = { size: 0, dropped: 0, tail: Buffer.alloc(0) };
  return {
    present: false,
    startedAt: null,
    pid: null,
    status: null,
    stopped: null,
    alive: false,
    leftFile: false,
    left: [],
    stray: [],
    now: 0,
    streams: { out: empty, err: { ...empty } },
  };
}

/** Linux signal numbers (x86, arm) to names, for "killed by signal". */
const SIGNALS: Record<number, string> = {
  1: 'HUP',
  2: 'INT',
  3: 'QUIT',
  4: 'ILL',
  5: 'TRAP',
  6: 'ABRT',
  7: 'BUS',
  8: 'FPE',
  9: 'KILL',
  10: 'USR1',
  11: 'SEGV',
  12: 'USR2',
  13: 'PIPE',
  14: 'ALRM',
  15: 'TERM',
  16: 'STKFLT',
  17: 'CHLD',
  18: 'CONT',
  19: 'STOP',
  20: 'TSTP',
  21: 'TTIN',
  22: 'TTOU',
  23: 'URG',
  24: 'XCPU',
  25: 'XFSZ',
  26: 'VTALRM',
  27: 'PROF',
  28: 'WINCH',
  29: 'IO',
  30: 'PWR',
  31: 'SYS',
};

/**
 * The last lines of a stream: the tail the host sent, cut after its first newline when it does not
 * start at the first kept byte (so no half line leads), decoded as UTF-8 with U+FFFD for bad bytes.
 */
export function tailText(tail: Buffer, wholeStream: boolean): string {
  let start = 0;
  if (!wholeStream) {
    const newline = tail.indexOf(0x0a);
    if (newline >= 0 && newline < tail.length - 1) start = newline + 1;
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(tail.subarray(start));
}

/**
 * The state decision table (first match wins):
 * | directory | stopped      | status  | runner alive (pid + start time) | state                          |
 * | none      |              |         |                                 | absent                         |
 * | yes       | cancel       | any     | any                             | cancelled                      |
 * | yes       | timeout      | any     | any                             | timed_out                      |
 * | yes       | none         | rc≤128  |                                 | exited (exitCode rc)           |
 * | yes       | none         | rc>128  |                                 | killed (signal rc−128)         |
 * | yes       | none         | none    | yes                             | running                        |
 * | yes       | none         | none    | no pid file, started < 30 s ago | running (the runner is starting)|
 * | yes       | none         | none    | no                              | lost                           |
 * An ended command (exited, killed, lost) names in processesLeft what it started that still runs
 * (setsid, nohup and `&` children: the watchdog's `stray`); a cancel stops them, else the deadline.
 * `stopped` is written only while the command has not ended, so it wins over a `status` written
 * during the stop. rc>128 is how sh reports a signal; a command that itself exits 129..255 reads
 * as killed too (sh cannot tell them apart).
 */
export function jobReportFrom(raw: RawJobState): JobReport {
  const out = raw.streams.out;
  const err = raw.streams.err;
  const base = {
    exitCode: null,
    signal: null,
    startedAt: raw.startedAt,
    endedAt: null,
    stdoutBytes: out.size,
    stderrBytes: err.size,
    stdoutDropped: out.dropped,
    stderrDropped: err.dropped,
    stdoutTail: tailText(out.tail, out.tail.length >= out.size - out.dropped),
    stderrTail: tailText(err.tail, err.tail.length >= err.size - err.dropped),
    stopConfirmed: null,
    processesLeft: [],
  };
  if (!raw.present) return { ...base, state: 'absent' };
  if (raw.stopped) {
    const state: JobHostState = raw.stopped.kind === 'cancel' ? 'cancelled' : 'timed_out';
    // Confirmed once the stop has reported and nothing of the job was seen alive after KILL.
    const confirmed = raw.leftFile ? raw.left.length === 0 && !raw.alive : null;
    return { ...base, state, endedAt: raw.status?.endedAt ?? raw.stopped.at, stopConfirmed: confirmed, processesLeft: raw.left };
  }
  if (raw.status) {
    const { rc, endedAt } = raw.status;
    // What the command started and left running (until a cancel, or the job's deadline).
    const processesLeft = raw.stray.length > 0 ? raw.stray : raw.leftFile ? raw.left : [];
    if (rc > 128) return { ...base, state: 'killed', signal: SIGNALS[rc - 128] ?? String(rc - 128), endedAt, processesLeft };
    return { ...base, state: 'exited', exitCode: rc, endedAt, processesLeft };
  }
  if (raw.alive) return { ...base, state: 'running' };
  if (raw.pid === null && raw.startedAt !== null && raw.now - raw.startedAt < START_GRACE_MS) return { ...base, state: 'running' };
  return { ...base, state: 'lost', processesLeft: raw.stray.length > 0 ? raw.stray : raw.left };
}

export interface PageHeader {
  size: number;
  dropped: number;
  ended: boolean;
  data: Buffer;
}

/** Parse a page: the header line and at most `length` bytes after it. */
export function parsePage(output: Buffer, length: number): PageHeader | 'absent' | null {
  const end = output.indexOf(0x0a);
  if (end < 0 || end > MAX_FRAME_LINE) return null;
  const header = output.subarray(0, end).toString('latin1');
  if (header === 'mre-job absent') return 'absent';
  const match = /^mre-page ([0-9]{1,16}) ([0-9]{1,16}) ([01])$/.exec(header);
  if (!match) return null;
  const data = output.subarray(end + 1);
  if (data.length > length) return null;
  return { size: Number(match[1]), dropped: Number(match[2]), ended: match[3] === '1', data };
}

export type CleanupAnswer = 'absent' | 'running' | 'removed' | 'failed';

export function parseCleanup(output: Buffer): CleanupAnswer | null {
  const match = /^mre-cleanup (absent|running|removed|failed)\n?$/.exec(output.subarray(0, 64).toString('latin1'));
  const answer = match?.[1];
  return answer === 'absent' || answer === 'running' || answer === 'removed' || answer === 'failed' ? answer : null;
}
