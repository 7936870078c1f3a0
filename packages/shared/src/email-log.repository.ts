import type { Db } from 'mongodb';
import { createBatcher } from './batcher';
import { createLogDirectory, daysOf, entryBuckets, logBuckets } from './email-log-buckets';
import { createLogPartitions, partitionOf, partitionOfMonth } from './email-log-partitions';
import { createEntryIndexes, createPartitionCounts, deleteBucketIn } from './email-log.storage';
import { insertIgnoringDuplicates, NEW_ENTRY_FIELDS, outcomeFields, toError } from './email-log.writes';
import { createEmailLogPages } from './email-log-pages';
import { newId } from './ids';
import type { EmailLogCursor, EmailLogFilter } from './email-log-query';
import type { BucketDeleteResult, EmailContentDoc, EmailLogDoc, RetentionDay, SendOutcome } from './email-log.types';
import type { EmailStatus } from './schemas';

export type * from './email-log.types';

/** Statuses the send path may overwrite; after these, events own the status. */
const OUTCOME_STATUSES: EmailStatus[] = ['queued', 'sent', 'send_failed'];

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
   * Retention: drops every partition whose entries were all sent before `cutoff` (whole
   * collections, email-log-partitions.ts); returns them and how many entries they held.
   */
  dropExpiredPartitions(cutoff: Date): Promise<{ parts: string[]; removed: number }>;
  /** Retention: the directory's days up to the cut-off's day, oldest first, every workspace. */
  retentionDays(cutoff: Date): Promise<RetentionDay[]>;
  /**
   * Retention: removes the entries of a day or hour bucket in `parts`, and their content. With
   * `limit`, at most that many entries a partition (and only those sent before `before`);
   * without, the whole bucket.
   */
  deleteBucket(
    parts: string[],
    field: 'day' | 'hour',
    value: string,
    opts?: { limit?: number; before?: Date },
  ): Promise<BucketDeleteResult>;
  /** Retention: drops a removed day, or one removed hour of it, from the directory. */
  forgetBucket(day: string, hourKey?: string): Promise<void>;
  /** Retention: drops the directory's months before `month`, once their days are all removed. */
  forgetMonthsBefore(month: string): Promise<void>;
  /** One page of the log, newest first (sentAt desc, _id desc), strictly after `after`. */
  list(workspaceId: string, filter: EmailLogFilter, opts: { limit: number; after?: EmailLogCursor }): Promise<EmailLogDoc[]>;
  /** The same order as `list`, read in batches (the CSV export); `return()` it to stop early. */
  scan(workspaceId: string, filter: EmailLogFilter, batchSize?: number): AsyncGenerator<EmailLogDoc, void, undefined>;
  /**
   * Writes entries made elsewhere (imports, fixtures, benchmarks) as the send path does: into
   * the bucket directory first, then the entries, then their content when given.
   */
  importEntries(
    entries: EmailLogDoc[],
    contents?: Array<Omit<EmailContentDoc, 'day' | 'hour'>>,
    /** `registered: true` when the caller wrote the directory already (a bulk load in batches). */
    opts?: { registered?: boolean },
  ): Promise<void>;
  /** Entries per (UTC day, value of `field`) for days in [sinceDay, untilDay]: `$match` + `$group`/`$sum` only. */
  countByDay(
    workspaceId: string,
    field: 'status' | 'type' | 'sendMethod',
    days: { since: string; until: string },
  ): Promise<Array<{ day: string; key: string; count: number }>>;
  /** Links a resend to its original: count, time and the new id. False when the original is gone. */
  recordResend(workspaceId: string, originalId: string, resendId: string, at: Date): Promise<boolean>;
}

export function createEmailLogRepository(db: Db): EmailLogRepository {
  const parts = createLogPartitions<EmailLogDoc, EmailContentDoc>(db, createEntryIndexes);
  const directory = createLogDirectory(db);
  const pages = createEmailLogPages(parts.logs, directory);
  const counts = createPartitionCounts(db);
  const logsOf = (id: string) => parts.logs(partitionOf(id));

  /** The stored entry is newer than this outcome: a later attempt, or events own the status. */
  const isStale = (current: Pick<EmailLogDoc, 'attempts' | 'status'>, o: SendOutcome) =>
    current.attempts > o.attempts ||
    // An attempt the SMTP server accepted stays `sent`: nothing later in that attempt undoes it.
    (current.attempts === o.attempts && current.status === 'sent' && o.status !== 'sent') ||
    !OUTCOME_STATUSES.includes(current.status);

  // An entry that already exists (a retry, a replay from the outbox, a pre-created resend) is
  // read and updated by `_id`.
  const writeExisting = async (o: SendOutcome): Promise<boolean> => {
    const current = await logsOf(o.id).findOne({ _id: o.id }, { projection: { attempts: 1, status: 1 } });
    if (current && isStale(current, o)) return false;
    await logsOf(o.id).updateOne({ _id: o.id }, { $set: outcomeFields(o), $setOnInsert: NEW_ENTRY_FIELDS }, { upsert: true });
    return true;
  };

  /** Inserts into one partition; returns the indexes (into `docs`) that already existed. */
  const insertInto = async (part: string, docs: EmailLogDoc[], content: EmailContentDoc[]) => {
    await parts.ensure(part);
    // Content and entries at once: a replay after a crash between the two rewrites both.
    const [existing] = await Promise.all([
      insertIgnoringDuplicates(parts.logs(part), docs),
      content.length ? insertIgnoringDuplicates(parts.contents(part), content) : undefined,
    ]);
    await counts.add(part, docs.length - existing.size);
    return existing;
  };

  // Most outcomes are an email's first: they go in as one unordered insert per batch (and
  // partition), and only the ids that already existed take the read-and-update path. A batch
  // waits up to 100 ms for company: on FerretDB every statement is a transaction, and the
  // directory and partition counts cost a few writes per batch whatever its size, so batches of
  // ~15 cost the logs database about twice the CPU an email of batches of ~50
  // (bench/throughput.bench.ts: 3,945 → 3,040 µs of CPU an email at the same load; an entry
  // shows up at most 100 ms later).
  const outcomes = createBatcher<SendOutcome, boolean>(
    async (batch) => {
      // The directory first: an entry written but not counted would be missing from pages.
      await directory.register(batch);
      const results: Array<boolean | Error> = new Array(batch.length);
      for (const [part, items] of groupBy(batch, (o) => partitionOf(o.id))) {
        const existing = await insertInto(
          part,
          items.map(({ o }) => ({ _id: o.id, ...outcomeFields(o), ...NEW_ENTRY_FIELDS }) as EmailLogDoc),
          items.map(({ o }) => ({ ...o.content, _id: o.id, workspaceId: o.workspaceId, sentAt: new Date(o.sentAt), ...dayHour(o.sentAt) })),
        );
        await Promise.all(
          items.map(async ({ o, i }, k) => {
            results[i] = existing.has(k) ? await writeExisting(o).catch((e: unknown) => toError(e)) : true;
          }),
        );
      }
      return results;
    },
    { maxItems: 200, maxWaitMs: 100 },
  );

  return {
    async ensureIndexes() {
      await directory.ensureIndexes();
      // This month's partition now, so the first send does not wait for it; later ones on first use.
      await parts.ensure(partitionOf(newId('em')));
    },

    recordOutcome(o) {
      return outcomes.add(o);
    },

    async findById(workspaceId, id) {
      const doc = await logsOf(id).findOne({ _id: id });
      return doc?.workspaceId === workspaceId ? doc : null;
    },

    async getContent(workspaceId, id) {
      const doc = await parts.contents(partitionOf(id)).findOne({ _id: id });
      return doc?.workspaceId === workspaceId ? doc : null;
    },

    async dropExpiredPartitions(cutoff) {
      const cutMonth = cutoff.toISOString().slice(0, 7);
      // A partition holds emails accepted in its month; one accepted then but sent (retried) in
      // the cut-off's month or later is listed by that month's directory documents.
      const stillSent = new Set((await directory.monthsFrom(cutMonth)).flatMap((m) => m.parts ?? []));
      const dropped: string[] = [];
      let removed = 0;
      for (const part of await parts.existing()) {
        if (part === '' || part >= partitionOfMonth(cutMonth) || stillSent.has(part)) continue;
        removed += await counts.get(part);
        await parts.drop(part);
        await counts.remove(part);
        dropped.push(part);
      }
      return { parts: dropped, removed };
    },

    async retentionDays(cutoff) {
      const last = logBuckets(cutoff).day;
      const existing = new Set(await parts.existing());
      const totals = new Map<string, { n: number; parts: Set<string> }>();
      for (const doc of await directory.monthsUpTo(last.slice(0, 7))) {
        for (const d of daysOf(doc)) {
          if (d.day > last) continue;
          const t = totals.get(d.day) ?? { n: 0, parts: new Set<string>() };
          totals.set(d.day, t);
          t.n += d.count;
          for (const p of doc.parts ?? [partitionOfMonth(doc.month)]) if (existing.has(p)) t.parts.add(p);
        }
      }
      const days: RetentionDay[] = [];
      for (const [day, t] of [...totals].sort(([a], [b]) => (a < b ? -1 : 1))) {
        // A day whose partitions were all dropped has nothing left to read.
        const perHour = t.parts.size ? Object.entries(await directory.hoursOfDay(day)).sort(([a], [b]) => (a < b ? -1 : 1)) : [];
        days.push({
          day,
          total: t.n,
          parts: [...t.parts],
          hours: perHour.map(([key, count]) => ({ key, hour: `${day}T${key.slice(1)}`, count })),
        });
      }
      return days;
    },

    async deleteBucket(inParts, field, value, opts = {}) {
      const result = { removed: 0, contentRemoved: 0, exhausted: true };
      for (const part of inParts) {
        const r = await deleteBucketIn(parts.logs(part), parts.contents(part), field, value, opts);
        await counts.add(part, -r.removed);
        result.removed += r.removed;
        result.contentRemoved += r.contentRemoved;
        result.exhausted &&= r.exhausted;
      }
      return result;
    },

    forgetBucket(day, hourKey) {
      return directory.forget(day, hourKey);
    },

    forgetMonthsBefore(month) {
      return directory.forgetMonthsBefore(month);
    },

    list: pages.list,
    scan: pages.scan,

    async importEntries(entries, withContent = [], opts = {}) {
      if (!opts.registered) await directory.register(entries.map((e) => ({ id: e._id, workspaceId: e.workspaceId, sentAt: e.sentAt })));
      const contentByPart = groupBy(withContent, (c) => partitionOf(c._id));
      for (const [part, items] of groupBy(entries, (e) => partitionOf(e._id))) {
        const content = (contentByPart.get(part) ?? []).map(({ o }) => ({ ...o, ...dayHour(o.sentAt) }));
        contentByPart.delete(part);
        for (let i = 0; i < Math.max(items.length, content.length); i += 5000) {
          await insertInto(
            part,
            items.slice(i, i + 5000).map(({ o }) => ({ ...o, ...entryBuckets(o.workspaceId, o.sentAt) })),
            content.slice(i, i + 5000),
          );
        }
      }
      // Content whose entries were written before.
      for (const [part, items] of contentByPart) {
        await parts.ensure(part);
        await insertIgnoringDuplicates(
          parts.contents(part),
          items.map(({ o }) => ({ ...o, ...dayHour(o.sentAt) })),
        );
      }
    },

    async countByDay(workspaceId, field, days) {
      const inRange = (await directory.workspaceMonths(workspaceId)).filter(
        (m) => m.month >= days.since.slice(0, 7) && m.month <= days.until.slice(0, 7),
      );
      const sums = new Map<string, { day: string; key: string; count: number }>();
      for (const part of new Set(inRange.flatMap((m) => m.parts ?? [partitionOfMonth(m.month)]))) {
        const rows = await parts
          .logs(part)
          .aggregate<{ _id: { day: string; key: string }; n: number }>([
            { $match: { workspaceId, day: { $gte: days.since, $lte: days.until } } },
            { $group: { _id: { day: '$day', key: `$${field}` }, n: { $sum: 1 } } },
          ])
          .toArray();
        for (const r of rows) {
          const k = `${r._id.day}|${String(r._id.key)}`;
          const row = sums.get(k) ?? { day: r._id.day, key: String(r._id.key), count: 0 };
          sums.set(k, row);
          row.count += r.n;
        }
      }
      return [...sums.values()];
    },

    async recordResend(workspaceId, originalId, resendId, at) {
      const r = await logsOf(originalId).updateOne(
        { _id: originalId, workspaceId },
        { $inc: { resendCount: 1 }, $set: { lastResentAt: at }, $push: { resends: resendId } },
      );
      return r.matchedCount > 0;
    },
  };
}

const dayHour = (sentAt: Date | string) => {
  const { day, hour } = logBuckets(sentAt);
  return { day, hour };
};

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, Array<{ o: T; i: number }>> {
  const groups = new Map<string, Array<{ o: T; i: number }>>();
  items.forEach((o, i) => {
    const list = groups.get(key(o));
    if (list) list.push({ o, i });
    else groups.set(key(o), [{ o, i }]);
  });
  return groups;
}
