/**
 * A relay host entry for tests that drive the relay's operations directly: the settings a loaded
 * config would give a host (strict host keys, no labels, ready shells, 10 sessions, 4 connections, 10 s to
 * connect), with whatever a test needs in `fields`.
 */
import type { HostConfig } from '../../relay/config.ts';

export function testHostConfig(fields: Pick<HostConfig, 'name' | 'address' | 'port' | 'username' | 'auth'> & Partial<HostConfig>): HostConfig {
  return {
    strictHostKeyChecking: true,
    hostKeyFingerprints: [],
    labels: {},
    readOnly: false,
    proxmox: false,
    readyShell: true,
    maxSessions: 10,
    maxConnections: 4,
    connectTimeoutMs: 10_000,
    ...fields,
  };
}
