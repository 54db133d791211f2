/**
 * Job scripts inside a Proxmox VM, through the QEMU guest agent. The scripts of host-jobs.ts are
 * all short: the start script makes the job's directory, starts the runner detached (setsid, every
 * fd redirected) and exits; status, page, cancel and cleanup read or act and exit. So each is one
 * synchronous `qm guest exec VMID --timeout S -- sh -c WRAPPER ...`, and the job itself runs on in
 * the guest, as it does on a host. Facts this relies on (qemu-server PVE/CLI/qm.pm, qemu
 * qga/commands.c):
 * - qm's `--timeout` is how long qm polls `guest-exec-status` (once a second); 0 means "no limit",
 *   not "return at once" (that is `--synchronous 0`). Past it qm prints only `{"pid": N}` and
 *   the script may still be running: the answer is then unknown, never guessed.
 * - the agent reports a command as exited once it has exited and its stdout and stderr pipes are
 *   closed; the runner holds neither (all redirected), so the start returns when its script does.
 * - the agent keeps at most 16 MiB of each stream (and says `out-truncated`); qm decodes the
 *   agent's base64 and prints the bytes inside a JSON string, which mangles anything that is not
 *   ASCII. So the wrapper encodes the script's stdout itself (base64, or hex through od where the
 *   guest has no base64), and the relay decodes it back to the exact bytes the parsers expect. The
 *   largest answer is a page of MAX_JOB_PAGE_BYTES (256 KiB, about 350 KB encoded): far within the
 *   agent's limit, so a page always comes back whole.
 * - the agent runs commands as its own user (root) with its service's environment, where HOME is
 *   often unset: the wrapper takes the home from the guest's passwd then, so every call finds the
 *   same base. SHELL is set to bash where the guest has it, as a synchronous VM command runs.
 */
import { guestExecAnswer } from '../shared/proxmox.ts';
import { quoteShellWord } from '../shared/shell-quote.ts';

/** Runs "$@" (a job script's argv) and prints a marker line, then the script's stdout encoded. */
const WRAPPER =
  `case "\${HOME:-/}" in /) HOME=$(awk -F: -v u="$(id -u)" '$3 == u { print $6; exit }' /etc/passwd 2>/dev/null); ` +
  `[ -n "$HOME" ] || HOME=/root;; esac; export HOME; ` +
  `[ -n "\${SHELL:-}" ] || { SHELL=/bin/sh; b=$(command -v bash 2>/dev/null) && SHELL=$b; }; export SHELL; ` +
  `if command -v base64 >/dev/null 2>&1; then echo mre-vm-b64; "$@" | base64; else echo mre-vm-hex; "$@" | od -An -v -tx1; fi`;

/** The argv the guest agent runs: the wrapper around a job script's argv. */
export function vmJobArgv(argv: string[]): string[] {
  return ['sh', '-c', WRAPPER, 'mre-vm-job', ...argv];
}

/** The host command line: qm runs the wrapper in VM `vmid`, waiting up to `seconds` for it. */
export function vmJobCommandLine(vmid: string, argv: string[], seconds: number): string {
  if (!/^[1-9][0-9]{2,8}$/.test(vmid)) throw new Error(`not a VM id: ${vmid}`);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new Error(`qm timeout out of range: ${seconds}`);
  return ['qm', 'guest', 'exec', vmid, '--timeout', String(seconds), '--', ...vmJobArgv(argv)].map(quoteShellWord).join(' ');
}

/** Bytes of qm's answer for at most `decoded` bytes of script output: hex through od is the widest (3 chars a byte, a line per 16). */
export function vmAnswerBytes(decoded: number): number {
  return decoded * 4 + 8 * 1024;
}

export type VmAnswer =
  /** The script ran to its end: its stdout, decoded. */
  | { kind: 'ran'; stdout: Buffer; exitCode: number | null }
  /** qm stopped waiting (its --timeout): the script may still be running. */
  | { kind: 'pending' }
  /** The agent kept only part of the output. */
  | { kind: 'truncated' }
  /** No agent answer: qm's own refusal (no agent, VM stopped, no sh in the guest...). */
  | { kind: 'refused'; message: string }
  /** An answer that is none of these. */
  | { kind: 'unreadable' };

/** Read what `qm guest exec` printed (stdout) and said (stderr) for a wrapper run. */
export function readVmAnswer(stdout: Buffer, stderr: string): VmAnswer {
  const text = stdout.toString('utf8');
  const start = text.indexOf('{');
  if (start < 0) {
    const said = (stderr.trim() || text.trim()).slice(0, 500);
    return said ? { kind: 'refused', message: said } : { kind: 'unreadable' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(start));
  } catch {
    return { kind: 'unreadable' };
  }
  const answer = guestExecAnswer.safeParse(parsed);
  if (!answer.success) return { kind: 'unreadable' };
  const data = answer.data;
  if (data.exited !== 1 && data.exited !== true) return data.pid !== undefined ? { kind: 'pending' } : { kind: 'unreadable' };
  if (data['out-truncated'] === 1 || data['out-truncated'] === true) return { kind: 'truncated' };
  const out = data['out-data'] ?? '';
  const newline = out.indexOf('\n');
  const marker = newline < 0 ? out : out.slice(0, newline);
  const body = newline < 0 ? '' : out.slice(newline + 1);
  let bytes: Buffer;
  if (marker === 'mre-vm-b64' && /^[A-Za-z0-9+/=\n]*$/.test(body)) bytes = Buffer.from(body.replace(/\n/g, ''), 'base64');
  else if (marker === 'mre-vm-hex' && /^[0-9a-f \n]*$/.test(body) && body.replace(/[ \n]/g, '').length % 2 === 0)
    bytes = Buffer.from(body.replace(/[ \n]/g, ''), 'hex');
  else return { kind: 'unreadable' };
  return { kind: 'ran', stdout: bytes, exitCode: data.exitcode ?? null };
}
