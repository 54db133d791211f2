/**
 * What an approval is for: one call, described exactly, and the hash that binds the approval to it.
 * The hash covers every argument that changes what runs where (tool, relay, host, guest, the exact
 * command text, the timeout, sudo), so a command that differs by one byte, or the same command on another
 * host, has another hash and cannot use the approval.
 */
import { z } from 'zod';
import { GUEST_KINDS } from '../../shared/proxmox.ts';
import { toHex } from '../../shared/encoding.ts';

/** Commands are at most 10,000 characters in the tools; the record allows some room, no more. */
const MAX_COMMAND_CHARS = 65_536;

export const approvalCallSchema = z
  .object({
    tool: z.string().min(1).max(64),
    relay: z.string().min(1).max(128),
    /** relay/host: the host whatever other relays appear later. */
    host: z.string().min(1).max(256),
    guest: z
      .object({ kind: z.enum(GUEST_KINDS), id: z.string().min(1).max(32) })
      .strict()
      .nullable(),
    command: z.string().min(1).max(MAX_COMMAND_CHARS),
    /** Run under sudo (ssh_exec_command sudo: true); absent for a plain call. */
    sudo: z.literal(true).optional(),
    timeoutMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600 * 1000),
  })
  .strict();
export type ApprovalCall = z.infer<typeof approvalCallSchema>;

/**
 * Canonical JSON: keys sorted at every level, no whitespace, so the same call always gives the
 * same bytes whatever order its fields were built in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

/**
 * SHA-256 (hex) of the canonical JSON of {tool, relay, host, guest, command, timeout, sudo}. `sudo`
 * is left out when absent, so a plain call hashes as before, and differently from the same call under sudo.
 */
export async function approvalArgsHash(call: ApprovalCall): Promise<string> {
  const canonical = canonicalJson({
    tool: call.tool,
    relay: call.relay,
    host: call.host,
    guest: call.guest,
    command: call.command,
    timeout: call.timeoutMs,
    sudo: call.sudo,
  });
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical))));
}
