import type { HostInventoryEntry, HostStatus } from './protocol.ts';
import type { HostView } from './tool-executor.ts';

/**
 * What ssh_list_hosts shows for each host: the relay's inventory, with the probe's verdict when
 * one was taken (null reachability when not), and a note when the relay itself is offline.
 */
export function hostViews(relayId: string, inventory: HostInventoryEntry[], statuses: HostStatus[] | null, offlineNote?: string): HostView[] {
  const byName = new Map((statuses ?? []).map((status) => [status.name, status]));
  return inventory.map((host) => {
    const status = byName.get(host.name);
    const detail = status?.message !== undefined ? `${status.code ? `[${status.code}] ` : ''}${status.message}` : offlineNote;
    return {
      name: host.name,
      relay: relayId,
      target: host.target,
      labels: host.labels,
      capabilities: host.capabilities,
      reachable: status ? status.reachable : null,
      ...(detail !== undefined ? { detail } : {}),
      ...(status?.latencyMs !== undefined ? { latencyMs: status.latencyMs } : {}),
    };
  });
}
