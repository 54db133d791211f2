/**
 * Proxmox VE, in the words both sides share: container and VM ids, the actions the relay may run
 * with `pct` and `qm`, and parsers for their output. Parsing lives here (not on the relay) so the
 * Worker and the stdio mode format results the same way.
 */
import { z } from 'zod';

/** A container or VM id: 100 to 999999999, digits only, exactly as Proxmox accepts them. */
export const GUEST_ID_PATTERN = /^[1-9][0-9]{2,8}$/;
const GUEST_ID_RULE = 'a whole number from 100 to 999999999 (digits only, e.g. 101)';

/**
 * A ctid or vmid as a tool argument: a JSON integer in range, or a string of digits. Anything
 * else (`100;reboot`, `099`, `1e3`, `-1`, ` 101`, `101\n`) is refused before it goes anywhere.
 */
export const guestIdSchema = z
  .union([z.number().int().min(100).max(999_999_999), z.string().regex(GUEST_ID_PATTERN, GUEST_ID_RULE)], { error: `must be ${GUEST_ID_RULE}` })
  .transform((value) => String(value))
  .refine((value) => GUEST_ID_PATTERN.test(value), { message: `must be ${GUEST_ID_RULE}` });

/** The same id on the wire: always the canonical string. */
export const guestIdWire = z.string().regex(GUEST_ID_PATTERN);

export const GUEST_KINDS = ['lxc', 'qemu'] as const;
export type GuestKind = (typeof GUEST_KINDS)[number];

export const PVE_ACTIONS = ['list', 'status', 'start', 'stop', 'shutdown'] as const;
export type PveAction = (typeof PVE_ACTIONS)[number];

/** The `pct` / `qm` words for an action. The relay quotes every word; none comes from input except the id. */
export function pveArgv(kind: GuestKind, action: PveAction, id: string | undefined, options: { verbose?: boolean; timeoutSeconds?: number } = {}): string[] {
  const tool = kind === 'lxc' ? 'pct' : 'qm';
  if (action === 'list') return [tool, 'list'];
  if (id === undefined || !GUEST_ID_PATTERN.test(id)) throw new Error(`${action} needs a valid id`);
  const argv = [tool, action, id];
  if (action === 'status' && options.verbose) argv.push('--verbose');
  if (action === 'shutdown' && options.timeoutSeconds !== undefined) argv.push('--timeout', String(Math.trunc(options.timeoutSeconds)));
  return argv;
}

/** How long the relay (and the hub, plus transit) give a pct/qm command. */
export function pveDeadlineMs(action: PveAction, timeoutSeconds?: number): number {
  if (action === 'list' || action === 'status') return 30_000;
  if (action === 'shutdown') return ((timeoutSeconds ?? DEFAULT_SHUTDOWN_SECONDS) + 30) * 1000;
  return 120_000;
}

/** qm guest exec waits for the agent up to the command's timeout; the relay gives it this much more. */
export const GUEST_EXEC_MARGIN_MS = 15_000;

/** The deadline of a command run in a guest: a VM's guest agent answers after its own timeout. */
export function guestExecDeadlineMs(kind: GuestKind | undefined, timeoutMs: number): number {
  return kind === 'qemu' ? timeoutMs + GUEST_EXEC_MARGIN_MS : timeoutMs;
}

/** pct/qm shutdown's own default wait, when the call gives none. */
export const DEFAULT_SHUTDOWN_SECONDS = 60;

export interface ContainerRow {
  vmid: string;
  status: string;
  lock: string | null;
  name: string;
}

/**
 * `pct list`: `printf "%-10s %-10s %-12s %-20s\n"` of VMID, Status, Lock, Name, under a header.
 * Lock is usually empty, so splitting on blanks alone would read the name as the lock; the column
 * where a word starts says which it is. A value wider than its column pushes the rest right, so
 * with four words there is no doubt either.
 */
export function parsePctList(text: string): ContainerRow[] {
  const rows: ContainerRow[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || /^VMID\s+Status\b/.test(line)) continue;
    const words = [...line.matchAll(/\S+/g)];
    const [vmid, status, third, fourth] = words;
    if (!vmid || !status || !GUEST_ID_PATTERN.test(vmid[0])) continue;
    if (fourth && third) {
      rows.push({
        vmid: vmid[0],
        status: status[0],
        lock: third[0],
        name: words
          .slice(3)
          .map((word) => word[0])
          .join(' '),
      });
    } else if (third) {
      // Lock's column starts at 22 and Name's at 35 when nothing overflowed.
      const isLock = (third.index ?? 0) < 35;
      rows.push({ vmid: vmid[0], status: status[0], lock: isLock ? third[0] : null, name: isLock ? '' : third[0] });
    } else {
      rows.push({ vmid: vmid[0], status: status[0], lock: null, name: '' });
    }
  }
  return rows;
}

export interface VmRow {
  vmid: string;
  name: string;
  status: string;
  memMb: number | null;
  bootDiskGb: number | null;
  pid: number | null;
}

/** `qm list`: VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID, right- and left-aligned columns. */
export function parseQmList(text: string): VmRow[] {
  const rows: VmRow[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words.length < 3 || !GUEST_ID_PATTERN.test(words[0] ?? '')) continue;
    const [vmid, name, status, mem, disk, pid] = words as [string, string, string, string?, string?, string?];
    const number = (value: string | undefined): number | null => (value !== undefined && /^\d+(\.\d+)?$/.test(value) ? Number(value) : null);
    rows.push({
      vmid,
      name,
      status,
      memMb: number(mem),
      bootDiskGb: number(disk),
      pid: pid !== undefined && /^\d+$/.test(pid) && pid !== '0' ? Number(pid) : null,
    });
  }
  return rows;
}

/** `pct status` / `qm status` (with --verbose, more `key: value` lines). */
export function parseStatus(text: string): { status: string | null; fields: Record<string, string> } {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9_.-]+):\s?(.*)$/.exec(line.trimEnd());
    if (match?.[1] && match[2] !== undefined && !(match[1] in fields)) fields[match[1]] = match[2];
  }
  return { status: fields.status ?? null, fields };
}

/** What `qm guest exec` prints: the guest agent's answer, as JSON. */
export const guestExecAnswer = z.object({
  /** Absent when qm stopped waiting (its --timeout): it then prints only the command's pid. */
  exited: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
  pid: z.number().int().optional(),
  exitcode: z.number().int().optional(),
  signal: z.number().int().optional(),
  'out-data': z.string().optional(),
  'err-data': z.string().optional(),
  'out-truncated': z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
  'err-truncated': z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
});
export type GuestExecAnswer = z.infer<typeof guestExecAnswer>;
