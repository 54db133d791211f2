/**
 * One ImageKit transfer's state, in its own Durable Object (named by the transfer id), so it
 * survives restarts and a confirm runs once: claim() is atomic here. An alarm at expiry deletes
 * whatever the transfer left in ImageKit, retrying until ImageKit answers, then forgets it.
 */
import { DurableObject } from 'cloudflare:workers';
import type { Outcome } from '../../shared/errors.ts';
import { readImageKitConfig } from '../../shared/imagekit/config.ts';
import { claimTransfer, cleanUpExpired, CONFIRM_STALE_MS, type ImageKitTransfer, type TransferStore } from '../../shared/imagekit/transfers.ts';
import { logEvent } from '../log.ts';

const RECORD_KEY = 'transfer';
const RETRY_CLEANUP_MS = 60_000;

export class ImageKitTransferState extends DurableObject<Env> {
  async create(transfer: ImageKitTransfer): Promise<void> {
    await this.ctx.storage.put(RECORD_KEY, transfer);
    await this.ctx.storage.setAlarm(transfer.expiresAt);
  }

  async claim(ownerId: string, kind: ImageKitTransfer['kind'], now: number, id: string): Promise<Outcome<ImageKitTransfer>> {
    const stored = await this.ctx.storage.get<ImageKitTransfer>(RECORD_KEY);
    const claimed = claimTransfer(stored, id, ownerId, kind, now);
    if (claimed.ok) await this.ctx.storage.put(RECORD_KEY, { ...claimed.value, state: 'confirming', claimedAt: now } satisfies ImageKitTransfer);
    return claimed;
  }

  async setState(state: 'done' | 'open'): Promise<void> {
    const stored = await this.ctx.storage.get<ImageKitTransfer>(RECORD_KEY);
    if (!stored) return;
    if (state === 'open' && stored.state !== 'confirming') return;
    await this.ctx.storage.put(RECORD_KEY, { ...stored, state } satisfies ImageKitTransfer);
  }

  /** The transfer's host and path for its owner (policy is checked on them before a confirm); null for anyone else. */
  async peek(ownerId: string): Promise<Pick<ImageKitTransfer, 'host' | 'ctid' | 'path' | 'kind'> | null> {
    const stored = await this.ctx.storage.get<ImageKitTransfer>(RECORD_KEY);
    if (!stored || stored.ownerId !== ownerId) return null;
    return { host: stored.host, path: stored.path, kind: stored.kind, ...(stored.ctid !== undefined ? { ctid: stored.ctid } : {}) };
  }

  override async alarm(): Promise<void> {
    const stored = await this.ctx.storage.get<ImageKitTransfer>(RECORD_KEY);
    if (!stored) return;
    // Not under a confirm that is still running: it would find its file gone mid-way.
    if (stored.state === 'confirming' && Date.now() - (stored.claimedAt ?? 0) < CONFIRM_STALE_MS) {
      await this.ctx.storage.setAlarm(Date.now() + RETRY_CLEANUP_MS);
      return;
    }
    if (stored.state !== 'done') {
      const config = readImageKitConfig(this.env);
      if (config) {
        const { ImageKitService } = await import('../../shared/imagekit/service.ts');
        const cleaned = await cleanUpExpired(new ImageKitService(config), stored);
        if (!cleaned.ok) {
          logEvent('warn', 'could not clean up an expired ImageKit transfer; retrying', { transferId: stored.id, code: cleaned.error.code });
          await this.ctx.storage.setAlarm(Date.now() + RETRY_CLEANUP_MS);
          return;
        }
        if (cleaned.value > 0) logEvent('info', 'deleted the ImageKit files of an expired transfer', { transferId: stored.id, files: cleaned.value });
      }
    }
    await this.ctx.storage.deleteAll();
  }
}

export function transferState(env: Env, id: string): DurableObjectStub<ImageKitTransferState> {
  return env.IMAGEKIT_TRANSFER.get(env.IMAGEKIT_TRANSFER.idFromName(id));
}

/** The bridge's store, backed by one Durable Object per transfer. */
export function durableTransferStore(env: Env): TransferStore {
  return {
    create: async (transfer) => transferState(env, transfer.id).create(transfer),
    claim: async (id, ownerId, kind, now) => (await transferState(env, id).claim(ownerId, kind, now, id)) as Outcome<ImageKitTransfer>,
    finish: async (id) => transferState(env, id).setState('done'),
    release: async (id) => transferState(env, id).setState('open'),
  };
}
