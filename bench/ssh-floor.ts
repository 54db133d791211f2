/** The floor every benchmark here compares with: ssh2 straight to the test sshd, and the relay's memory. */
import { readFileSync } from 'node:fs';
import { Client, type ConnectConfig } from 'ssh2';

export function sshConfig(sshd: { port: number; user: string; privateKey: string | Buffer }): ConnectConfig {
  return { host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKey: sshd.privateKey };
}

export function connect(config: ConnectConfig): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on('connect', () => client.setNoDelay(true));
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect(config);
  });
}

/** `true` on an open connection: one channel, no output. */
export function execTrue(client: Client): Promise<void> {
  return execCommand(client, 'true');
}

/** `command` on an open connection, its output read and dropped; resolves when the channel closes. */
export function execCommand(client: Client, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) {
        reject(error);
        return;
      }
      channel.resume();
      channel.stderr.resume();
      channel.once('close', () => resolve());
    });
  });
}

/** A process's peak resident memory (VmHWM), in MB. */
export function peakRssMb(pid: number): number {
  return Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'NaN') / 1024;
}
