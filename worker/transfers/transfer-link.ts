/**
 * One transfer link: a Durable Object per transfer id holding its record, so the link survives
 * restarts, is used at most once, and is deleted by an alarm when it expires. Only the SHA-256 of
 * the link's token is stored.
 */
import { DurableObject } from 'cloudflare:workers';
import { equalBytes } from '../auth/password-hash.ts';

export interface TransferRecord {
  id: string;
  kind: 'upload' | 'download';
  userId: string;
  /** Who asked, for the policy check and the audit row when the link is used. */
  username: string;
  client: string | null;
  /** The OAuth grant of the token the link was asked with: the link dies with it (a revoked sign-in). */
  grantId?: string;
  /** The relay that serves the host, and the host's own name there. */
  relay: string;
  host: string;
  /** The path is inside this Proxmox container on the host. */
  ctid?: string;
  path: string;
  permissions?: number;
  overwrite: boolean;
  tokenHash: string;
  createdAt: number;
  expiresAt: number;
  maxBytes: number;
  state: 'ready' | 'claimed';
}

const RECORD_KEY = 'transfer';

export class TransferLink extends DurableObject<Env> {
  async create(record: TransferRecord): Promise<void> {
    await this.ctx.storage.put(RECORD_KEY, record);
    await this.ctx.storage.setAlarm(record.expiresAt);
  }

  /** The record if the token matches and the link is still usable; nothing changes. */
  async inspect(tokenHash: string, kind: TransferRecord['kind']): Promise<TransferRecord | null> {
    const record = await this.ctx.storage.get<TransferRecord>(RECORD_KEY);
    if (!record || record.kind !== kind || record.state !== 'ready' || Date.now() >= record.expiresAt) return null;
    const encoder = new TextEncoder();
    return equalBytes(encoder.encode(record.tokenHash), encoder.encode(tokenHash)) ? record : null;
  }

  /** Use the link: succeeds once. A Durable Object runs this without interleaving, so two racing requests cannot both win. */
  async claim(tokenHash: string, kind: TransferRecord['kind']): Promise<TransferRecord | null> {
    const record = await this.inspect(tokenHash, kind);
    if (!record) return null;
    const claimed: TransferRecord = { ...record, state: 'claimed' };
    await this.ctx.storage.put(RECORD_KEY, claimed);
    return claimed;
  }

  /** The record for its owner; for anyone else the same answer as for a missing transfer. */
  async describe(userId: string): Promise<TransferRecord | null> {
    const record = await this.ctx.storage.get<TransferRecord>(RECORD_KEY);
    return record && record.userId === userId ? record : null;
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}
