import type { Collection, Db } from 'mongodb';

export type SuppressionReason = 'hard_bounce' | 'complaint' | 'manual';

/** A recipient the workspace must not send to (main database, `suppressions`). */
export interface SuppressionDoc {
  _id: string; // `${workspaceId}:${address}`
  workspaceId: string;
  address: string; // lower-cased
  reason: SuppressionReason;
  /** The email whose bounce or complaint put the address here. */
  emailId: string | null;
  /** The provider's diagnostic, e.g. "550 5.1.1 user unknown". */
  detail: string | null;
  createdAt: Date;
}

export interface SuppressionRepository {
  ensureIndexes(): Promise<void>;
  /** The suppression of `address` in the workspace, if any. */
  find(workspaceId: string, address: string): Promise<SuppressionDoc | null>;
  /** Adds (or keeps the first) suppression; idempotent. */
  add(s: Omit<SuppressionDoc, '_id' | 'createdAt' | 'address'> & { address: string; createdAt?: Date }): Promise<void>;
  /** Lifts a suppression; false when there was none. */
  remove(workspaceId: string, address: string): Promise<boolean>;
  /** In address order, paged by the last seen `_id`. */
  list(workspaceId: string, opts: { limit: number; after?: string }): Promise<SuppressionDoc[]>;
}

const idOf = (workspaceId: string, address: string) => `${workspaceId}:${address.trim().toLowerCase()}`;

export function createSuppressionRepository(db: Db): SuppressionRepository {
  const col: Collection<SuppressionDoc> = db.collection('suppressions');
  return {
    async ensureIndexes() {
      // list(): a workspace's suppressions in address order, paged by _id.
      await col.createIndex({ workspaceId: 1, _id: 1 }, { name: 'workspace_id' });
    },
    find(workspaceId, address) {
      return col.findOne({ _id: idOf(workspaceId, address) });
    },
    async add(s) {
      const address = s.address.trim().toLowerCase();
      await col.updateOne(
        { _id: idOf(s.workspaceId, address) },
        {
          $setOnInsert: {
            workspaceId: s.workspaceId,
            address,
            reason: s.reason,
            emailId: s.emailId,
            detail: s.detail,
            createdAt: s.createdAt ?? new Date(),
          },
        },
        { upsert: true },
      );
    },
    async remove(workspaceId, address) {
      const r = await col.deleteOne({ _id: idOf(workspaceId, address) });
      return r.deletedCount > 0;
    },
    list(workspaceId, { limit, after }) {
      return col
        .find({ workspaceId, ...(after ? { _id: { $gt: after } } : {}) })
        .sort({ _id: 1 })
        .limit(limit)
        .toArray();
    },
  };
}
