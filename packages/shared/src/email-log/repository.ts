import type { Collection, Db, Filter } from 'mongodb';
import { createBatcher } from '../batcher';
import { CONTENT_INDEXES, ENTRY_INDEXES } from './indexes';
import { createEmailLogPages, detectListEngine } from './read/pages';
import type { EmailLogCursor, EmailLogFilter } from './read/query';
import { insertIgnoringDuplicates, NEW_ENTRY_FIELDS, outcomeFields, toError } from './write/outcomes';
import type { EmailContentDoc, EmailLogDoc, SendOutcome } from './types';
import type { EmailStatus } from '../schemas';

export type * from './types';

/** Statuses the send path may overwrite; after these, events own the status. */
const OUTCOME_STATUSES: EmailStatus[] = ['queued', 'sent', 'send_failed'];

/** The two collections of the log in the logs database. */
export const EMAIL_LOGS = 'email_logs';
export const EMAIL_CONTENTS = 'email_contents';

export interface EmailLogRepository {
  ensureIndexes(): Promise<void>;
  /**
   * Writes a send outcome idempotently: an outcome never overwrites a later attempt's outcome
   * or a status that delivery events have moved on, so replays from the outbox are harmless.
   * Returns false when the stored entry was already newer.
   */
  recordOutcome(outcome: SendOutcome): Promise<boolean>;
  findById(workspaceId: string, id: string): Promise<EmailLogDoc | null>;
  getContent(workspaceId: string, id: string): Promise<EmailContentDoc | null>;
  /**
   * Retention: removes up to `limit` entries sent before `cutoff` and their content. `matched`
   * is how many the read found: fewer than `limit` means none are left.
   */
  deleteSentBefore(cutoff: Date, limit: number): Promise<{ matched: number; removed: number; contentRemoved: number }>;
  /**
   * Retention: removes up to `limit` content documents older than `cutoff` whose entry is gone
   * (a crash between the two deletes of an older version, or an import without entries).
   */
  deleteOrphanContent(cutoff: Date, limit: number): Promise<{ matched: number; removed: number }>;
  /** One page of the log, newest first (sentAt desc, _id desc), strictly after `after`. */
  list(workspaceId: string, filter: EmailLogFilter, opts: { limit: number; after?: EmailLogCursor }): Promise<EmailLogDoc[]>;
  /** The same order as `list`, read in batches (the CSV export); `return()` it to stop early. */
  scan(workspaceId: string, filter: EmailLogFilter, batchSize?: number): AsyncGenerator<EmailLogDoc, void, undefined>;
  /** Writes entries made elsewhere (imports, fixtures, benchmarks), and their content when given. */
  importEntries(entries: EmailLogDoc[], contents?: EmailContentDoc[]): Promise<void>;
  /** Entries per (UTC day of `sentAt`, value of `field`) for days in [since, until]: `$match` + `$group`. */
  countByDay(
    workspaceId: string,
    field: 'status' | 'type' | 'sendMethod',
    days: { since: string; until: string },
  ): Promise<Array<{ day: string; key: string; count: number }>>;
  /** Links a resend to its original: count, time and the new id. False when the original is gone. */
  recordResend(workspaceId: string, originalId: string, resendId: string, at: Date): Promise<boolean>;
}

/** Up to `limit` ids of documents sent before `cutoff`, through the `sentAt` index (retention). */
async function idsSentBefore<T extends { _id: string; sentAt: Date }>(col: Collection<T>, cutoff: Date, limit: number): Promise<string[]> {
  const docs = await col
    .find({ sentAt: { $lt: cutoff } } as Filter<T>, { projection: { _id: 1 }, singleBatch: true })
    .limit(limit)
    .batchSize(limit)
    .toArray();
  return docs.map((d) => d._id as string);
}

export function createEmailLogRepository(db: Db): EmailLogRepository {
  const logs = db.collection<EmailLogDoc>(EMAIL_LOGS);
  const contents = db.collection<EmailContentDoc>(EMAIL_CONTENTS);
  const pages = createEmailLogPages(logs, detectListEngine(db));

  /**
   * An entry that already exists (a retry, a replay from the outbox, a pre-created resend) is
   * updated in one statement whose filter is the rule "this outcome is not older than what is
   * stored": a later attempt wins, an attempt the SMTP server accepted stays `sent`, and once
   * events own the status the send path no longer touches it.
   */
  const writeExisting = async (o: SendOutcome): Promise<boolean> => {
    const notOlder: Filter<EmailLogDoc> = {
      _id: o.id,
      status: { $in: OUTCOME_STATUSES },
      $or: [{ attempts: { $lt: o.attempts } }, { attempts: o.attempts, ...(o.status === 'sent' ? {} : { status: { $ne: 'sent' } }) }],
    };
    return (await logs.updateOne(notOlder, { $set: outcomeFields(o) })).matchedCount === 1;
  };

  // Most outcomes are an email's first: they go in as one unordered insert per batch, and only
  // the ids that already existed take the update path. A batch waits up to 100 ms for company,
  // so a busy worker writes its outcomes in batches of ~50 (an entry shows up at most 100 ms later).
  const outcomes = createBatcher<SendOutcome, boolean>(
    async (batch) => {
      // Content and entries at once: a replay after a crash between the two rewrites both.
      const [existing] = await Promise.all([
        insertIgnoringDuplicates(
          logs,
          batch.map((o) => ({ _id: o.id, ...outcomeFields(o), ...NEW_ENTRY_FIELDS }) as EmailLogDoc),
        ),
        insertIgnoringDuplicates(
          contents,
          batch.map((o) => ({ ...o.content, _id: o.id, workspaceId: o.workspaceId, sentAt: new Date(o.sentAt) })),
        ),
      ]);
      return Promise.all(batch.map((o, i) => (existing.has(i) ? writeExisting(o).catch(toError) : true)));
    },
    { maxItems: 200, maxWaitMs: 100 },
  );

  return {
    async ensureIndexes() {
      await logs.createIndexes(ENTRY_INDEXES);
      await contents.createIndexes(CONTENT_INDEXES);
    },

    recordOutcome: (o) => outcomes.add(o),

    findById: (workspaceId, id) => logs.findOne({ _id: id, workspaceId }),

    getContent: (workspaceId, id) => contents.findOne({ _id: id, workspaceId }),

    async deleteSentBefore(cutoff, limit) {
      const ids = await idsSentBefore(logs, cutoff, limit);
      if (ids.length === 0) return { matched: 0, removed: 0, contentRemoved: 0 };
      // Both at once (two server sessions): content whose entry went while its own delete did
      // not (a crash between the two) is swept by deleteOrphanContent. The same bound on the
      // entries again: one retried (sent again) since the read above stays.
      const [contentRemoved, removed] = await Promise.all([
        contents.deleteMany({ _id: { $in: ids } }).then((r) => r.deletedCount),
        logs.deleteMany({ _id: { $in: ids }, sentAt: { $lt: cutoff } }).then((r) => r.deletedCount),
      ]);
      return { matched: ids.length, removed, contentRemoved };
    },

    async deleteOrphanContent(cutoff, limit) {
      const old = await idsSentBefore(contents, cutoff, limit);
      if (old.length === 0) return { matched: 0, removed: 0 };
      // Content of an entry still kept (sent again after the cut-off) stays with it.
      const kept = new Set(
        (
          await logs
            .find({ _id: { $in: old } }, { projection: { _id: 1 }, singleBatch: true })
            .batchSize(old.length)
            .toArray()
        ).map((d) => d._id),
      );
      const orphans = old.filter((id) => !kept.has(id));
      const removed = orphans.length ? (await contents.deleteMany({ _id: { $in: orphans } })).deletedCount : 0;
      return { matched: old.length, removed };
    },

    list: pages.list,
    scan: pages.scan,

    async importEntries(entries, withContent = []) {
      for (let i = 0; i < entries.length; i += 5000) await insertIgnoringDuplicates(logs, entries.slice(i, i + 5000));
      for (let i = 0; i < withContent.length; i += 5000) await insertIgnoringDuplicates(contents, withContent.slice(i, i + 5000));
    },

    async countByDay(workspaceId, field, days) {
      const since = new Date(`${days.since}T00:00:00.000Z`);
      const until = new Date(Date.parse(`${days.until}T00:00:00.000Z`) + 86_400_000);
      const rows = await logs
        .aggregate<{ _id: { day: string; key: unknown }; n: number }>([
          { $match: { workspaceId, sentAt: { $gte: since, $lt: until } } },
          {
            $group: {
              _id: { day: { $dateToString: { date: '$sentAt', format: '%Y-%m-%d', timezone: 'UTC' } }, key: `$${field}` },
              n: { $sum: 1 },
            },
          },
        ])
        .toArray();
      return rows.map((r) => ({ day: r._id.day, key: String(r._id.key), count: r.n }));
    },

    async recordResend(workspaceId, originalId, resendId, at) {
      const r = await logs.updateOne(
        { _id: originalId, workspaceId },
        { $inc: { resendCount: 1 }, $set: { lastResentAt: at }, $push: { resends: resendId } },
      );
      return r.matchedCount > 0;
    },
  };
}
