/**
 * CPU time of a process and its descendants, from /proc (Linux). The file benchmark uses it to
 * show where a transfer's CPU goes: on a small machine every process on the path shares the
 * same cores, so a part's CPU per MB bounds the throughput of the whole.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** A process's parent and the CPU it has used so far (user + system), or null once it is gone. */
export function processStat(pid: number): { ppid: number; cpuMs: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at "state".
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { ppid, cpuMs: (ticks * 1000) / TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** Milliseconds of CPU used so far by `root` and every live descendant of it. */
export function treeCpuMs(root: number): number {
  const children = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const info = processStat(pid);
    if (!info) continue;
    cpu.set(pid, info.cpuMs);
    children.set(info.ppid, [...(children.get(info.ppid) ?? []), pid]);
  }
  let total = 0;
  const queue = [root];
  for (let index = 0; index < queue.length && index < 10_000; index += 1) {
    const pid = queue[index] as number;
    total += cpu.get(pid) ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}

/**
 * Milliseconds of CPU the whole machine has spent so far (every process and the kernel's own
 * work, from /proc/stat). On the loopback bench the hosts' processes run here too, so this is
 * where a command's cost on its host shows: the processes it starts, and the watchdog's reads.
 */
export function machineCpuMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  // user, nice, system, (idle, iowait not counted), irq, softirq, steal
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1000) / TICKS_PER_SECOND;
}
