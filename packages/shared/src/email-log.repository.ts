import type { Collection, Db, Filter } from 'mongodb';
import { createBatcher } from './batcher';
import { createLogDirectory, daysOf, entryBuckets, logBuckets, type EntryBuckets } from './email-log-buckets';
import { insertIgnoringDuplicates, NEW_ENTRY_FIELDS, outcomeFields, toError } from './email-log.writes';
import { createEmailLogPages } from './email-log-pages';
import type { EmailLogCursor, EmailLogFilter } from './email-log-query';
import type { BounceType, TimelineItem } from './email-events';
import type { EmailStatus, EmailType, MessageContent, Reference, SendMethodName } from './schemas';

/** One email, one document, in the logs database (`email_logs`). */
export interface EmailLogDoc {
  _id: string;
  workspaceId: string;
  recipient: string;
  status: EmailStatus;
  type: EmailType;
  from: string;
  subject: string;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
  sendMethod: SendMethodName;
  /** Our Message-ID header (`<emailId@domain>`). */
  messageId: string;
  /** The id the SMTP server gave in its reply ("queued as …"), when it gave one. */
  providerMessageId: string | null;
  attempts: number;
  nextRetryAt: Date | null;
  reference: Reference | null;
  metadata: Record<string, unknown> | null;
  resendOf: string | null;
  resendCount: number;
  lastResentAt: Date | null;
  resends: string[];
  createdAt: Date;
  /** When the email left Mailroom, or the time of the attempt that produced the current error. */
  sentAt: Date;
  /** UTC day and hour of `sentAt`, and the workspace's buckets (email-log-buckets.ts, `entryBuckets`). */
  day: EntryBuckets['day'];
  hour: EntryBuckets['hour'];
  wsMonth: EntryBuckets['wsMonth'];
  wsDay: EntryBuckets['wsDay'];
  wsHour: EntryBuckets['wsHour'];
  deliveredAt: Date | null;
  openedAt: Date | null;
  opens: number;
  clickedAt: Date | null;
  clicks: number;
  /** Delivery-event fields (see email-events.ts); absent on entries written before events existed. */
  bouncedAt?: Date | null;
  bounceType?: BounceType | null;
  bounceDetail?: string | null;
  complainedAt?: Date | null;
  failedAt?: Date | null;
  failDetail?: string | null;
  /** The entry's delivery events by provider time, bounded (TIMELINE_MAX). */
  timeline?: TimelineItem[];
  /** Applied event ids (de-duplication) and the version guarding the event worker's writes. */
  eventIds?: string[];
  eventsVersion?: number;
  updatedAt: Date;
}

/** Rendered content kept for resends (`email_contents`), apart from the entries so list scans stay light. */
export interface EmailContentDoc extends MessageContent {
  _id: string;
  workspaceId: string;
  sentAt: Date;
  /** The entry's buckets, so retention removes content bucket by bucket with its entries. */
  day: string;
  hour: string;
}

/** What one retention step removed. */
export interface BucketDeleteResult {
  removed: number;
  contentRemoved: number;
  /** Nothing matching is left in the bucket. */
  exhausted: boolean;
}

/** A day of the directory that retention works through, with its hours (`h00`…) oldest first. */
export interface RetentionDay {
  day: string;
  total: number;
  hours: Array<{ key: string; hour: string; count: number }>;
}

/** What the worker reports after one send attempt. */
export interface SendOutcome {
  id: string;
  workspaceId: string;
  status: Extract<EmailStatus, 'queued' | 'sent' | 'send_failed'>;
  recipient: string;
  type: EmailType;
  from: string;
  subject: string;
  sendMethod: SendMethodName;
  messageId: string;
  providerMessageId: string | null;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
  attempts: number;
  nextRetryAt: string | null;
  reference: Reference | null;
  metadata: Record<string, unknown> | null;
  resendOf: string | null;
  createdAt: string;
  sentAt: string;
  content: MessageContent;
}

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
  /** Retention: the directory's days up to the cut-off's day, oldest first, every workspace. */
  retentionDays(cutoff: Date): Promise<RetentionDay[]>;
  /**
   * Retention: removes the entries of a day or hour bucket, and their content. With `limit`,
   * at most that many entries (and only those sent before `before`); without, the whole bucket.
   */
  deleteBucket(field: 'day' | 'hour', value: string, opts?: { limit?: number; before?: Date }): Promise<BucketDeleteResult>;
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
  importEntries(entries: EmailLogDoc[], contents?: Array<Omit<EmailContentDoc, 'day' | 'hour'>>): Promise<void>;
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
  const logs: Collection<EmailLogDoc> = db.collection('email_logs');
  const contents: Collection<EmailContentDoc> = db.collection('email_contents');
  const directory = createLogDirectory(db);
  const pages = createEmailLogPages(logs, directory);

  /** The stored entry is newer than this outcome: a later attempt, or events own the status. */
  const isStale = (current: Pick<EmailLogDoc, 'attempts' | 'status'>, o: SendOutcome) =>
    current.attempts > o.attempts || !OUTCOME_STATUSES.includes(current.status);

  // An entry that already exists (a retry, a replay from the outbox, a pre-created resend) is
  // read and updated by `_id` alone, the one filter FerretDB 1.x does not scan for.
  const writeExisting = async (o: SendOutcome): Promise<boolean> => {
    const current = await logs.findOne({ _id: o.id }, { projection: { attempts: 1, status: 1 } });
    if (current && isStale(current, o)) return false;
    await logs.updateOne({ _id: o.id }, { $set: outcomeFields(o), $setOnInsert: NEW_ENTRY_FIELDS }, { upsert: true });
    return true;
  };

  // Most outcomes are an email's first: they go in as one unordered insert per batch, and only
  // the ids that already existed take the read-and-update path.
  const outcomes = createBatcher<SendOutcome, boolean>(
    async (batch) => {
      // The directory first: an entry written but not counted would be missing from pages.
      await directory.register(batch);
      await insertIgnoringDuplicates(
        contents,
        batch.map((o) => {
          const { day, hour } = logBuckets(o.sentAt);
          return { ...o.content, _id: o.id, workspaceId: o.workspaceId, sentAt: new Date(o.sentAt), day, hour };
        }),
      );
      const existing = await insertIgnoringDuplicates(
        logs,
        batch.map((o) => ({ _id: o.id, ...outcomeFields(o), ...NEW_ENTRY_FIELDS }) as EmailLogDoc),
      );
      return Promise.all(batch.map((o, i) => (existing.has(i) ? writeExisting(o).catch((e: unknown) => toError(e)) : true)));
    },
    { maxItems: 200, maxWaitMs: 5 },
  );

  return {
    async ensureIndexes() {
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
      // Retention removes whole buckets across workspaces (the cut-off's hour also by sentAt,
      // checked within the hour).
      await logs.createIndex({ day: 1 }, { name: 'day' });
      await logs.createIndex({ hour: 1 }, { name: 'hour' });
      await contents.createIndex({ day: 1 }, { name: 'day' });
      await contents.createIndex({ hour: 1 }, { name: 'hour' });
      await directory.ensureIndexes();
    },

    recordOutcome(o) {
      return outcomes.add(o);
    },

    // Looked up by _id alone and checked here: FerretDB 1.x only pushes a lone `_id` equality
    // down to its storage, so any other filter field would make this a collection scan.
    async findById(workspaceId, id) {
      const doc = await logs.findOne({ _id: id });
      return doc?.workspaceId === workspaceId ? doc : null;
    },

    async getContent(workspaceId, id) {
      const doc = await contents.findOne({ _id: id });
      return doc?.workspaceId === workspaceId ? doc : null;
    },

    async retentionDays(cutoff) {
      const last = logBuckets(cutoff).day;
      const totals = new Map<string, number>();
      for (const doc of await directory.monthsUpTo(last.slice(0, 7))) {
        for (const d of daysOf(doc)) if (d.day <= last) totals.set(d.day, (totals.get(d.day) ?? 0) + d.count);
      }
      const days: RetentionDay[] = [];
      for (const day of [...totals.keys()].sort()) {
        const perHour = Object.entries(await directory.hoursOfDay(day)).sort(([a], [b]) => (a < b ? -1 : 1));
        days.push({ day, total: totals.get(day)!, hours: perHour.map(([key, count]) => ({ key, hour: `${day}T${key.slice(1)}`, count })) });
      }
      return days;
    },

    async deleteBucket(field, value, opts = {}) {
      const where = { [field]: value, ...(opts.before ? { sentAt: { $lt: opts.before } } : {}) } as Filter<EmailLogDoc>;
      if (opts.limit === undefined) {
        const removed = (await logs.deleteMany(where)).deletedCount;
        const contentRemoved = (await contents.deleteMany(where as Filter<EmailContentDoc>)).deletedCount;
        return { removed, contentRemoved, exhausted: true };
      }
      const ids = (
        await logs
          .find(where, { projection: { _id: 1 } })
          .limit(opts.limit)
          .toArray()
      ).map((d) => d._id);
      // `_id $in` beside the bucket equality: the server narrows by the bucket first.
      const removed = ids.length ? (await logs.deleteMany({ [field]: value, _id: { $in: ids } } as Filter<EmailLogDoc>)).deletedCount : 0;
      let contentRemoved = ids.length
        ? (await contents.deleteMany({ [field]: value, _id: { $in: ids } } as Filter<EmailContentDoc>)).deletedCount
        : 0;
      const exhausted = ids.length < opts.limit;
      // Content whose entry an interrupted run already removed.
      if (exhausted) contentRemoved += (await contents.deleteMany(where as Filter<EmailContentDoc>)).deletedCount;
      return { removed, contentRemoved, exhausted };
    },

    forgetBucket(day, hourKey) {
      return directory.forget(day, hourKey);
    },

    forgetMonthsBefore(month) {
      return directory.forgetMonthsBefore(month);
    },

    list: pages.list,
    scan: pages.scan,

    async importEntries(entries, withContent) {
      await directory.register(entries);
      for (let i = 0; i < entries.length; i += 5000) {
        const docs = entries.slice(i, i + 5000).map((e) => ({ ...e, ...entryBuckets(e.workspaceId, e.sentAt) }));
        await logs.insertMany(docs, { ordered: false });
      }
      const contentDocs = (withContent ?? []).map((c) => {
        const { day, hour } = logBuckets(c.sentAt);
        return { ...c, day, hour };
      });
      for (let i = 0; i < contentDocs.length; i += 5000) await contents.insertMany(contentDocs.slice(i, i + 5000), { ordered: false });
    },

    async countByDay(workspaceId, field, days) {
      const rows = await logs
        .aggregate<{ _id: { day: string; key: string }; n: number }>([
          { $match: { workspaceId, day: { $gte: days.since, $lte: days.until } } },
          { $group: { _id: { day: '$day', key: `$${field}` }, n: { $sum: 1 } } },
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
