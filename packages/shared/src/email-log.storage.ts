import type { Collection, Db, Filter } from 'mongodb';
import type { BucketDeleteResult, EmailContentDoc, EmailLogDoc } from './email-log.types';

/*
 * Storage pieces of the email-log repository: the indexes of each partition, how many entries a
 * partition holds, and removing one bucket of a partition.
 */

/** The indexes of one partition (email-log-partitions.ts), each commented with what it serves. */
export async function createEntryIndexes(logs: Collection<EmailLogDoc>, contents: Collection<EmailContentDoc>): Promise<void> {
  // Pages: one bucket of a workspace's entries, newest first, the id breaking ties for cursors
  // (email-log-pages.ts reads by the workspace's month, day or hour).
  await logs.createIndex({ wsMonth: 1, sentAt: -1, _id: -1 }, { name: 'wsMonth_sentAt' });
  await logs.createIndex({ wsDay: 1, sentAt: -1, _id: -1 }, { name: 'wsDay_sentAt' });
  await logs.createIndex({ wsHour: 1, sentAt: -1, _id: -1 }, { name: 'wsHour_sentAt' });
  // Pages whose filter matches so little of a workspace that one read takes all the rest
  // (status or type within the workspace, newest first), and daily stats ($match on the day range).
  await logs.createIndex({ workspaceId: 1, status: 1, sentAt: -1 }, { name: 'workspace_status_sentAt' });
  await logs.createIndex({ workspaceId: 1, type: 1, sentAt: -1 }, { name: 'workspace_type_sentAt' });
  await logs.createIndex({ workspaceId: 1, day: 1 }, { name: 'workspace_day' });
  // `recipient` exact or prefix (an anchored regex is an index range), then the workspace.
  await logs.createIndex({ recipient: 1, workspaceId: 1, sentAt: -1 }, { name: 'recipient_workspace_sentAt' });
  // Delivery events that carry only the provider's id.
  await logs.createIndex({ providerMessageId: 1 }, { name: 'providerMessageId' });
  // Retention of a partition that is not wholly expired: whole buckets across workspaces (the
  // cut-off's own hour also by sentAt, checked within the hour).
  await logs.createIndex({ day: 1 }, { name: 'day' });
  await logs.createIndex({ hour: 1 }, { name: 'hour' });
  await contents.createIndex({ day: 1 }, { name: 'day' });
  await contents.createIndex({ hour: 1 }, { name: 'hour' });
}

/**
 * Entries per partition (`email_log_partitions`), so a retention run that drops a partition
 * can say how many entries went without reading them. Kept by the writes that insert and the
 * retention deletes that remove; an interrupted write can leave it a little low.
 */
export function createPartitionCounts(db: Db) {
  // Read and written by _id only: no index of its own.
  const col = db.collection<{ _id: string; count: number }>('email_log_partitions');
  return {
    async add(part: string, n: number) {
      if (n !== 0) await col.updateOne({ _id: part }, { $inc: { count: n } }, { upsert: true });
    },
    async get(part: string) {
      return (await col.findOne({ _id: part }))?.count ?? 0;
    },
    async remove(part: string) {
      await col.deleteOne({ _id: part });
    },
  };
}

/**
 * Removes one day or hour bucket of one partition, entries and content. With `limit`, at most
 * that many entries (those sent before `before`, when given); `exhausted` says none are left.
 */
export async function deleteBucketIn(
  logs: Collection<EmailLogDoc>,
  contents: Collection<EmailContentDoc>,
  field: 'day' | 'hour',
  value: string,
  opts: { limit?: number; before?: Date },
): Promise<BucketDeleteResult> {
  const where = { [field]: value, ...(opts.before ? { sentAt: { $lt: opts.before } } : {}) };
  if (opts.limit === undefined) {
    const removed = (await logs.deleteMany(where as Filter<EmailLogDoc>)).deletedCount;
    const contentRemoved = (await contents.deleteMany(where as Filter<EmailContentDoc>)).deletedCount;
    return { removed, contentRemoved, exhausted: true };
  }
  const ids = (
    await logs
      .find(where as Filter<EmailLogDoc>, { projection: { _id: 1 } })
      .limit(opts.limit)
      .toArray()
  ).map((d) => d._id);
  // `_id $in` beside the bucket equality: the server narrows by the bucket first.
  const byIds = { [field]: value, _id: { $in: ids } };
  const removed = ids.length ? (await logs.deleteMany(byIds as Filter<EmailLogDoc>)).deletedCount : 0;
  let contentRemoved = ids.length ? (await contents.deleteMany(byIds as Filter<EmailContentDoc>)).deletedCount : 0;
  const exhausted = ids.length < opts.limit;
  // Content whose entry an interrupted run already removed.
  if (exhausted) contentRemoved += (await contents.deleteMany(where as Filter<EmailContentDoc>)).deletedCount;
  return { removed, contentRemoved, exhausted };
}
