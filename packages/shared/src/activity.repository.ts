import type { Collection, Db } from 'mongodb';
import { newId } from './ids';

/** What admins and operators did, kept in the logs database beside the email log. */
export const ACTIVITY_ACTIONS = [
  'workspace.created',
  'key.created',
  'email.resent',
  'settings.changed',
  'settings.disconnected',
  'settings.test_sent',
  'suppression.removed',
  'webhook_endpoint.created',
  'webhook_endpoint.updated',
  'webhook_endpoint.deleted',
  'webhook_endpoint.secret_rotated',
  'webhook_endpoint.disabled',
  'webhook_endpoint.message_replayed',
] as const;
export type ActivityAction = (typeof ACTIVITY_ACTIONS)[number];

export interface ActivityDoc {
  _id: string; // act_… (time-sortable)
  workspaceId: string;
  action: ActivityAction;
  /** The API key that acted (`key_…`), `operator`, or `system` (the worker disabling a failing webhook endpoint). */
  actorKeyId: string;
  /** What was acted on: an email id, an address, a workspace id. */
  target: string | null;
  details: Record<string, unknown> | null;
  at: Date;
}

export interface ActivityRepository {
  ensureIndexes(): Promise<void>;
  record(entry: Omit<ActivityDoc, '_id' | 'at'> & { at?: Date }): Promise<ActivityDoc>;
  /** Newest first; `before` is the `_id` of the last item of the previous page. */
  list(workspaceId: string, opts: { limit: number; before?: string }): Promise<ActivityDoc[]>;
  /** Retention: removes up to `batchSize` entries older than `cutoff`; returns how many. */
  deleteBatchOlderThan(cutoff: Date, batchSize: number): Promise<number>;
}

export function createActivityRepository(logsDb: Db): ActivityRepository {
  const col: Collection<ActivityDoc> = logsDb.collection('activity_log');
  return {
    async ensureIndexes() {
      // list(): a workspace's activity newest first (ids are time-sortable).
      await col.createIndex({ workspaceId: 1, _id: -1 }, { name: 'workspace_id' });
      // Retention.
      await col.createIndex({ at: 1 }, { name: 'at' });
    },
    async record(entry) {
      const at = entry.at ?? new Date();
      const doc: ActivityDoc = { ...entry, _id: newId('act', at.getTime()), at };
      await col.insertOne(doc);
      return doc;
    },
    list(workspaceId, { limit, before }) {
      return col
        .find({ workspaceId, ...(before ? { _id: { $lt: before } } : {}) })
        .sort({ _id: -1 })
        .limit(limit)
        .toArray();
    },
    async deleteBatchOlderThan(cutoff, batchSize) {
      const batch = await col
        .find({ at: { $lt: cutoff } }, { projection: { _id: 1 } })
        .sort({ at: 1 })
        .limit(batchSize)
        .toArray();
      if (batch.length === 0) return 0;
      const r = await col.deleteMany({ _id: { $in: batch.map((d) => d._id) } });
      return r.deletedCount;
    },
  };
}
