/**
 * File transfer benchmark (issue 4): upload and download throughput of a 10 MB and a 100 MB random
 * file through the link tools (full local stack: HTTP → Worker → hub → relay → SFTP), through the
 * stdio mode's ssh_upload_file / ssh_download_file, against raw ssh2 SFTP (fastPut / fastGet) on
 * the same connection target (the floor) and OpenSSH scp. Also the relay's peak RSS during a
 * 100 MB link transfer. Targets: links ≥ 50% of raw SFTP, stdio ≥ 80%, relay peak < 150 MB.
 *
 * Run: npm run bench:files   (needs root for the test sshd, like the e2e tests)
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, type SFTPWrapper } from 'ssh2';
import { availableParallelism } from 'node:os';
import { startStack } from '../test/harness/stack.ts';
import { connectStdio, stdioEnv } from '../test/harness/stdio.ts';
import { treeCpuMs } from './process-cpu.ts';

const SIZES = (process.env.SIZES ?? '10000000,100000000').split(',').map(Number);
/** Each figure is the best of this many runs: throughput on a shared 2-core box is noisy. */
const RUNS = Math.max(1, Math.min(10, Number(process.env.RUNS ?? 3)));
const LIMIT = 200 * 1000 * 1000;
const work = mkdtempSync(join(tmpdir(), 'mre-bench-files-'));
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

function rssMb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'NaN') / 1024;
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < RUNS; run += 1) {
    const started = performance.now();
    await action();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

/** CPU seconds each part of the stack spent while `action` ran once. */
async function cpuOf(parts: Record<string, () => number>, action: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = Object.fromEntries(Object.entries(parts).map(([name, read]) => [name, read()]));
  await action();
  return Object.fromEntries(Object.entries(parts).map(([name, read]) => [name, (read() - (before[name] ?? 0)) / 1000]));
}

const stack = await startStack({ workerVars: { MAX_FILE_SIZE: String(LIMIT) } });
const results: string[] = [];
try {
  const { sshd } = stack;
  const remoteDir = `bench-files-${Date.now()}`;
  execFileSync('install', ['-d', '-o', sshd.user, join(sshd.home, remoteDir)]);

  const client = await new Promise<Client>((resolve, reject) => {
    const c = new Client();
    c.on('connect', () => c.setNoDelay(true));
    c.once('ready', () => resolve(c)).once('error', reject);
    c.connect({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKey: sshd.privateKey });
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((error, s) => (error ? reject(error) : resolve(s))));
  const stdio = await connectStdio(stdioEnv(sshd, { MAX_FILE_SIZE: String(LIMIT) }));
  const call = async (target: 'stack' | 'stdio', name: string, args: Record<string, unknown>) => {
    const result =
      target === 'stack'
        ? await stack.mcp.client.callTool({ name, arguments: args })
        : await stdio.client.callTool({ name, arguments: args }, undefined, { timeout: 600_000 });
    if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
    return result.structuredContent as { url?: string };
  };

  for (const size of SIZES) {
    const label = `${size / 1e6} MB`;
    const local = join(work, `file-${size}`);
    writeFileSync(
      local,
      Buffer.alloc(size).map(() => Math.floor(Math.random() * 256)),
    );
    const remote = (name: string): string => `${remoteDir}/${name}-${size}`;

    const rawUp = await timed(() => new Promise<void>((resolve, reject) => sftp.fastPut(local, remote('raw'), (error) => (error ? reject(error) : resolve()))));
    const rawDown = await timed(
      () => new Promise<void>((resolve, reject) => sftp.fastGet(remote('raw'), join(work, `raw-${size}`), (error) => (error ? reject(error) : resolve()))),
    );
    const scpArgs = ['-q', '-i', sshd.privateKeyPath, '-P', String(sshd.port), '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`, '-o', 'BatchMode=yes'];
    const scpUp = await timed(async () => execFileSync('scp', [...scpArgs, local, `${sshd.user}@127.0.0.1:${remote('scp')}`]));
    const scpDown = await timed(async () => execFileSync('scp', [...scpArgs, `${sshd.user}@127.0.0.1:${remote('scp')}`, join(work, `scp-${size}`)]));

    const relayPid = stack.relay.process.pid;
    const baseline = rssMb(relayPid);
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(relayPid));
    }, 20);
    const uploadThroughLink = async (): Promise<void> => {
      const upLink = await call('stack', 'ssh_request_upload', { path: remote('link'), overwrite: true });
      const response = await fetch(upLink.url ?? '', {
        method: 'PUT',
        body: Readable.toWeb(createReadStream(local)) as ReadableStream,
        duplex: 'half',
        headers: { 'Content-Length': String(size) },
      } as RequestInit);
      if (response.status !== 201) throw new Error(`upload link: HTTP ${response.status} ${await response.text()}`);
    };
    const downloadThroughLink = async (): Promise<void> => {
      const downLink = await call('stack', 'ssh_request_download', { path: remote('link') });
      const response = await fetch(downLink.url ?? '');
      if (!response.ok || !response.body) throw new Error(`download link: HTTP ${response.status}`);
      await pipeline(Readable.fromWeb(response.body as never), createWriteStream(join(work, `link-${size}`)));
    };
    const linkUp = await timed(uploadThroughLink);
    const linkDown = await timed(downloadThroughLink);
    clearInterval(sampler);
    if (statSync(join(work, `link-${size}`)).size !== size) throw new Error('download link returned the wrong size');
    const parts = {
      client: () => process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000,
      'Worker (wrangler dev + workerd)': () => treeCpuMs(stack.worker.process.pid),
      relay: () => treeCpuMs(relayPid),
      sshd: () => treeCpuMs(sshd.pid),
    };
    const cpuUp = await cpuOf(parts, uploadThroughLink);
    const cpuDown = await cpuOf(parts, downloadThroughLink);
    const cpuRow = (direction: string, cpu: Record<string, number>): string => {
      const total = Object.values(cpu).reduce((sum, seconds) => sum + seconds, 0);
      const shares = Object.entries(cpu)
        .map(([name, seconds]) => `${name} ${seconds.toFixed(2)}`)
        .join(', ');
      return `  CPU s for one link ${direction}: ${shares}; total ${total.toFixed(2)} → at most ${mbps(size, (total / availableParallelism()) * 1000).toFixed(0)} MB/s on ${availableParallelism()} cores`;
    };

    const stdioUp = await timed(() => call('stdio', 'ssh_upload_file', { local_path: local, remote_path: remote('stdio'), overwrite: true }));
    const stdioDown = await timed(() =>
      call('stdio', 'ssh_download_file', { remote_path: remote('stdio'), local_path: join(work, `stdio-${size}`), overwrite: true }),
    );

    const row = (name: string, up: number, down: number): string =>
      `${name.padEnd(34)} up ${mbps(size, up).toFixed(1).padStart(7)} MB/s (${((mbps(size, up) / mbps(size, rawUp)) * 100).toFixed(0).padStart(3)}% of raw)   down ${mbps(size, down).toFixed(1).padStart(7)} MB/s (${((mbps(size, down) / mbps(size, rawDown)) * 100).toFixed(0).padStart(3)}% of raw)`;
    results.push(
      `${label}:`,
      row('  raw ssh2 SFTP fastPut/fastGet', rawUp, rawDown),
      row('  OpenSSH scp', scpUp, scpDown),
      row('  link tools (full local stack)', linkUp, linkDown),
      row('  stdio ssh_upload/download_file', stdioUp, stdioDown),
      `  relay RSS during the link transfers: ${baseline.toFixed(0)} MB before, ${peak.toFixed(0)} MB peak`,
      cpuRow('upload', cpuUp),
      cpuRow('download', cpuDown),
    );
  }
  await stdio.close();
  client.end();
  rmSync(join(sshd.home, remoteDir), { recursive: true, force: true });
  process.stdout.write(
    `mcp-remote-exec file transfer benchmark (loopback sshd, Node ${process.version}, best of ${RUNS} runs each)\n\n${results.join('\n')}\n\nTargets: links ≥ 50% of raw SFTP, stdio ≥ 80%; relay peak RSS < 150 MB during 100 MB.\n`,
  );
} finally {
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}
