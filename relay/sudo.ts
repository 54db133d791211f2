/**
 * `sudo: true` on exec: the command runs as root under `sudo`, with the password the relay holds for
 * the host, without the password ever being a word of a command line.
 *
 * With a password, the wrapper (host-stop.ts) runs
 *   { IFS= read -r mre_p; printf '%s\n' "$mre_p"; } | sudo -S -p '' -- sh -c START mre-sudo PGID PIPE COMMAND
 * and the relay writes the password and a newline on the channel's stdin. `read` and `printf` are
 * shell builtins, so the password lives only in that short-lived subshell's memory and in a pipe:
 * never in argv (`ps`), the environment or a file. The pipe holds the one line, then EOF, so a wrong
 * password is tried once: sudo's second prompt reads EOF and sudo gives up (no loop, no wait for
 * the timeout). The channel's stdin stays open (ssh2 drops signals on an ended channel), which is
 * why the password cannot simply be followed by EOF on the channel.
 *
 * Without a password, `sudo -n` (never prompts): a rule that wants one fails at once.
 *
 * START (host-stop.ts), the first thing run as root, prints SUDO_STARTED on stderr, then gives the
 * command /dev/null as stdin (with NOPASSWD, sudo leaves the password unread in the pipe: the
 * command must not read it) and runs it with `sh`. Everything sudo wrote on stderr before
 * SUDO_STARTED (its lecture, "Sorry, try again.") is sudo's, not the command's: it is dropped, and
 * if the marker never comes, sudo refused and that text explains why.
 *
 * A stop (timeout, cancel) of such a run goes through the same door: the stop script runs under
 * `sudo` on the stop channel, the password written on that channel's stdin the same way, because
 * the SSH user cannot signal root's processes.
 */
import { failure, type Outcome } from '../shared/errors.ts';
import { quoteShellWord } from '../shared/shell-quote.ts';

export type SudoMode = 'password' | 'no-password';

export const SUDO_STARTED = '\x1emre-sudo\x1e\n';
/** sudo's own text before the marker is kept up to this many bytes for the error. */
const SUDO_TEXT_BYTES = 4096;
/** Characters of sudo's text an error quotes. */
const SUDO_TEXT_CHARS = 400;

export const SUDO_NEEDS_PASSWORD = 'sudo needs a password on this host: configure sudo_password_env or a NOPASSWD rule';

/** sudo reads at most this many bytes of a password (SUDO_CONV_REPL_MAX); a longer one would be cut, never match. */
export const MAX_SUDO_PASSWORD_BYTES = 1023;

/** A password the wrapper can carry: one line, no NUL (sudo reads up to the newline), no longer than sudo reads. */
export function checkSudoPassword(password: string): string | null {
  if (password.length === 0) return 'is empty';
  if (/[\n\r\0]/.test(password)) return 'contains a line break or a NUL byte; sudo reads the password up to the first line break';
  if (new TextEncoder().encode(password).length > MAX_SUDO_PASSWORD_BYTES) return `is longer than ${MAX_SUDO_PASSWORD_BYTES} bytes, the most sudo reads`;
  return null;
}

/** The shell command (octal escapes: no raw control bytes) that prints SUDO_STARTED. */
export const SUDO_STARTED_PRINTF = "printf '\\036mre-sudo\\036\\n'";

/**
 * Shell text that runs `sh -c SCRIPT mre-sudo ARGS` under sudo, its stdin the password line from
 * the channel ('password') or /dev/null ('no-password'). `args` is shell text placed as is: quoted
 * words or "$variable" expansions of the caller's shell.
 */
export function underSudo(script: string, args: string, mode: SudoMode): string {
  const words = ['sudo', mode === 'password' ? '-S' : '-n', '-p', '', '--', 'sh', '-c', script, 'mre-sudo'].map(quoteShellWord).join(' ');
  const sudo = args.length > 0 ? `${words} ${args}` : words;
  // `set +vx` first: a login shell tracing its commands (`set -x` in a startup file) would print the
  // password line's printf, password and all, on stderr, which reaches the caller in sudo's error.
  return mode === 'password' ? `set +vx; { IFS= read -r mre_p; printf '%s\\n' "$mre_p"; } | ${sudo}` : `${sudo} </dev/null`;
}

/**
 * Holds back stderr until SUDO_STARTED: what comes before is sudo's (kept, bounded, for the error);
 * what comes after is the command's and is passed on.
 */
export class SudoStderrFilter {
  started = false;
  private held = Buffer.alloc(0);
  private readonly forward: (chunk: Uint8Array) => void;

  constructor(forward: (chunk: Uint8Array) => void) {
    this.forward = forward;
  }

  push(chunk: Buffer): void {
    if (this.started) {
      this.forward(chunk);
      return;
    }
    const joined = Buffer.concat([this.held, chunk]);
    const at = joined.indexOf(SUDO_STARTED);
    if (at >= 0) {
      this.started = true;
      this.held = Buffer.alloc(0);
      const rest = joined.subarray(at + SUDO_STARTED.length);
      if (rest.length > 0) this.forward(rest);
      return;
    }
    // Keep the tail (a marker may straddle chunks) and a bounded head for the error.
    this.held = joined.length > SUDO_TEXT_BYTES ? Buffer.concat([joined.subarray(0, SUDO_TEXT_BYTES / 2), joined.subarray(-SUDO_TEXT_BYTES / 2)]) : joined;
  }

  /**
   * What sudo (or the shell, when sudo is missing) said, printable and bounded. `password` (the
   * configured one) is cut out first, should a PAM module ever echo it: this text reaches the model.
   */
  sudoText(password?: string): string {
    const said = this.held.toString('utf8');
    // Also as a shell would quote it in a trace ('it'\''s'), should tracing have been on before `set +vx`.
    const hidden = password ? said.replaceAll(`'${password.replaceAll("'", "'\\''")}'`, '[sudo password]').replaceAll(password, '[sudo password]') : said;
    const text = hidden
      .replace(/[^\x20-\x7e\n]/g, '?')
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .join(' / ');
    // The reason comes last (after a lecture, "Sorry, try again."): keep the end.
    return text.length > SUDO_TEXT_CHARS ? `…${text.slice(-SUDO_TEXT_CHARS)}` : text;
  }
}

/** The error when sudo exited without running the command. */
export function sudoRefused(host: string, mode: SudoMode, said: string, exitCode: number | null): Outcome<never> {
  const quoted = said ? ` (sudo said: "${said}")` : exitCode !== null ? ` (exit code ${exitCode})` : '';
  // 127: the login shell found no `sudo` to run (sudo itself exits 1 when it refuses).
  if (exitCode === 127) {
    return failure(
      'sudo_failed',
      `sudo is not installed on host "${host}" (or not on the SSH user's PATH)${quoted}. Nothing ran; install sudo or run the command without sudo.`,
    );
  }
  if (mode === 'no-password' && /password is required|a terminal is required|askpass/i.test(said)) {
    return failure('sudo_failed', `${SUDO_NEEDS_PASSWORD} (SSH_SUDO_PASSWORD in stdio mode). Host "${host}"${quoted}. Nothing ran.`);
  }
  if (mode === 'password' && /incorrect password|try again|no password was provided|authentication failure/i.test(said)) {
    return failure('sudo_failed', `sudo on host "${host}" refused the configured sudo password${quoted}. It was tried once and not retried; nothing ran.`);
  }
  return failure('sudo_failed', `sudo on host "${host}" did not run the command${quoted}. Nothing ran.`);
}
