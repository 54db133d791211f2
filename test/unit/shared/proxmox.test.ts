import { describe, expect, it } from 'vitest';
import { guestIdSchema, parsePctList, parseQmList, parseStatus, pveArgv } from '../../../shared/proxmox.ts';

const row = (vmid: string, status: string, lock: string, name: string): string =>
  `${vmid.padEnd(10)} ${status.padEnd(10)} ${lock.padEnd(12)} ${name.padEnd(20)}`;
const PCT_HEADER = row('VMID', 'Status', 'Lock', 'Name');

describe('container and VM ids', () => {
  it.each(['100', '101', '999999999', 100, 4242])('accepts %j', (value) => {
    expect(guestIdSchema.safeParse(value)).toMatchObject({ success: true, data: String(value) });
  });

  it.each(['100;reboot', '099', '1e3', '-1', ' 101', '101\n', '99', '1000000000', '', '0x65', '101 ', 'abc', 99, 1_000_000_000, 100.5, -101, null, true])(
    'refuses %j',
    (value) => {
      expect(guestIdSchema.safeParse(value).success).toBe(false);
    },
  );

  it('builds pct/qm words with nothing but the id from the caller', () => {
    expect(pveArgv('lxc', 'list', undefined)).toEqual(['pct', 'list']);
    expect(pveArgv('lxc', 'status', '101', { verbose: true })).toEqual(['pct', 'status', '101', '--verbose']);
    expect(pveArgv('qemu', 'shutdown', '200', { timeoutSeconds: 30 })).toEqual(['qm', 'shutdown', '200', '--timeout', '30']);
    expect(() => pveArgv('lxc', 'start', '101;reboot')).toThrow();
  });
});

describe('pct list', () => {
  it('keeps the lock column out of the name', () => {
    const text =
      [PCT_HEADER, row('101', 'running', '', 'web'), row('102', 'stopped', 'backup', 'db'), row('103', 'running', 'mounted', 'cache-1')].join('\n') + '\n';
    expect(parsePctList(text)).toEqual([
      { vmid: '101', status: 'running', lock: null, name: 'web' },
      { vmid: '102', status: 'stopped', lock: 'backup', name: 'db' },
      { vmid: '103', status: 'running', lock: 'mounted', name: 'cache-1' },
    ]);
  });

  it('reads a lock wider than its column, which pushes the name right', () => {
    const text = `${PCT_HEADER}\n${row('104', 'stopped', 'snapshot-delete', 'old')}\n`;
    expect(parsePctList(text)).toEqual([{ vmid: '104', status: 'stopped', lock: 'snapshot-delete', name: 'old' }]);
  });

  it('reads no containers from empty output', () => {
    expect(parsePctList('')).toEqual([]);
  });
});

describe('qm list and status', () => {
  it('reads qm list columns', () => {
    const text =
      '      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n' +
      '       200 build-vm             running    2048              32.00 12345     \n' +
      '       201 spare                stopped    1024               8.00 0         \n';
    expect(parseQmList(text)).toEqual([
      { vmid: '200', name: 'build-vm', status: 'running', memMb: 2048, bootDiskGb: 32, pid: 12345 },
      { vmid: '201', name: 'spare', status: 'stopped', memMb: 1024, bootDiskGb: 8, pid: null },
    ]);
  });

  it('reads status and verbose fields', () => {
    expect(parseStatus('status: running\n')).toEqual({ status: 'running', fields: { status: 'running' } });
    expect(parseStatus('cpus: 2\nname: web\nstatus: stopped\nuptime: 0\n')).toMatchObject({
      status: 'stopped',
      fields: { cpus: '2', name: 'web', uptime: '0' },
    });
    expect(parseStatus('garbage').status).toBeNull();
  });
});
