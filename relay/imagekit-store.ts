/**
 * ImageKit transfers in the stdio mode, kept as one JSON file each (mode 0600) in the relay's
 * state directory, so they survive a restart. A sweep, at start and then every minute, deletes
 * what expired transfers left in ImageKit and then their records; nothing is orphaned.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { success, type Outcome } from '../shared/errors.ts';
import type { ImageKitService } from '../shared/imagekit/service.ts';
import { claimTransfer, cleanUpExpired, CONFIRM_STALE_MS, type ImageKitTransfer, type TransferStore } from '../shared/imagekit/transfers.ts';
import { log } from './log.ts';

const SWEEP_EVERY_MS = 60_000;
const ID = /^[0-9a-f]{32}$/;

export class FileTransferStore implements TransferStore {
  private readonly dir: string;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'imagekit-transfers');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private path(id: string): string {
    if (!ID.test(id)) throw new Error('not a transfer id');
    return join(this.dir, `${id}.json`);
  }

  private read(id: string): ImageKitTransfer | null {
    if (!ID.test(id)) return null;
    try {
      return JSON.parse(readFileSync(this.path(id), 'utf8')) as ImageKitTransfer;
    } catch {
      return null;
    }
  }

  /** Written beside and renamed into place, so a crash never leaves half a record. */
  private write(transfer: ImageKitTransfer): void {
    const temp = `${this.path(transfer.id)}.tmp`;
    writeFileSync(temp, JSON.stringify(transfer), { mode: 0o600 });
    renameSync(temp, this.path(transfer.id));
  }

  async create(transfer: ImageKitTransfer): Promise<void> {
    this.write(transfer);
  }

  // One process owns this directory, and these run without awaiting in between: atomic enough.
  async claim(id: string, ownerId: string, kind: ImageKitTransfer['kind'], now: number): Promise<Outcome<ImageKitTransfer>> {
    const claimed = claimTransfer(this.read(id), id, ownerId, kind, now);
    if (!claimed.ok) return claimed;
    this.write({ ...claimed.value, state: 'confirming', claimedAt: now });
    return success(claimed.value);
  }

  async finish(id: string): Promise<void> {
    const transfer = this.read(id);
    if (transfer) this.write({ ...transfer, state: 'done' });
  }

  async release(id: string): Promise<void> {
    const transfer = this.read(id);
    if (transfer?.state === 'confirming') this.write({ ...transfer, state: 'open' });
  }

  /** Delete what expired transfers left in ImageKit, then forget them. */
  async sweep(service: ImageKitService, now: number = Date.now()): Promise<void> {
    for (const name of readdirSync(this.dir)) {
      const id = name.replace(/\.json$/, '');
      const transfer = this.read(id);
      if (!transfer || now < transfer.expiresAt) continue;
      if (transfer.state === 'confirming' && now - (transfer.claimedAt ?? 0) < CONFIRM_STALE_MS) continue;
      if (transfer.state !== 'done') {
        const cleaned = await cleanUpExpired(service, transfer);
        if (!cleaned.ok) {
          log('warn', 'could not clean up an expired ImageKit transfer; will retry', { transferId: id, code: cleaned.error.code });
          continue;
        }
        if (cleaned.value > 0) log('info', 'deleted the ImageKit files of an expired transfer', { transferId: id, files: cleaned.value });
      }
      rmSync(this.path(id), { force: true });
    }
  }

  startSweeping(service: ImageKitService): void {
    void this.sweep(service);
    this.timer = setInterval(() => void this.sweep(service), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
