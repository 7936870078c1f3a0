import type { Collection, Db, FindCursor } from 'mongodb';
import { createBatcher } from './batcher';
import { deleteByIds, insertIgnoringDuplicates, NEW_ENTRY_FIELDS, outcomeFields, toError } from './email-log.writes';
import { emailLogMongoFilter } from './email-log-filter';
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
  /** UTC day of `sentAt` (YYYY-MM-DD), stored so daily stats need only `$group` + `$sum`. */
  day: string;
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
  /**
   * Removes up to `batchSize` entries sent before `cutoff` (oldest first) with their content;
   * returns how many entries went. Callers loop until it returns 0.
   */
  deleteBatchOlderThan(cutoff: Date, batchSize: number): Promise<number>;
  /** Removes content left without an entry by an interrupted cleanup. */
  deleteContentOlderThan(cutoff: Date, batchSize: number): Promise<number>;
  /** One page of the log, newest first (sentAt desc, _id desc), strictly after `after`. */
  list(workspaceId: string, filter: EmailLogFilter, opts: { limit: number; after?: EmailLogCursor }): Promise<EmailLogDoc[]>;
  /** The same order as `list`, as one database cursor read in batches (the CSV export). */
  scan(workspaceId: string, filter: EmailLogFilter, batchSize?: number): FindCursor<EmailLogDoc>;
  /** Entries per (UTC day, value of `field`) for days in [sinceDay, untilDay]: `$match` + `$group`/`$sum` only. */
  countByDay(
    workspaceId: string,
    field: 'status' | 'type' | 'sendMethod',
    days: { since: string; until: string },
  ): Promise<Array<{ day: string; key: string; count: number }>>;
  /** Links a resend to its original: count, time and the new id. False when the original is gone. */
  recordResend(workspaceId: string, originalId: string, resendId: string, at: Date): Promise<boolean>;
}

/** Pages and exports leave out what only the detail view shows. */
const LIST_PROJECTION = { metadata: 0, timeline: 0 } as const;

export function createEmailLogRepository(db: Db): EmailLogRepository {
  const logs: Collection<EmailLogDoc> = db.collection('email_logs');
  const contents: Collection<EmailContentDoc> = db.collection('email_contents');

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
      await insertIgnoringDuplicates(
        contents,
        batch.map((o) => ({ ...o.content, _id: o.id, workspaceId: o.workspaceId, sentAt: new Date(o.sentAt) })),
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
      // The log page: a workspace's entries newest first, with the id as tie-breaker for cursors.
      await logs.createIndex({ workspaceId: 1, sentAt: -1, _id: -1 }, { name: 'workspace_sentAt' });
      // Delivery events that carry only the provider's id.
      await logs.createIndex({ providerMessageId: 1 }, { name: 'providerMessageId' });
      // Retention: entries older than the cut-off, oldest first.
      await logs.createIndex({ sentAt: 1 }, { name: 'sentAt' });
      // Filtered log pages: `status` (one value, or $in merged per value) in list order.
      await logs.createIndex({ workspaceId: 1, status: 1, sentAt: -1, _id: -1 }, { name: 'workspace_status_sentAt' });
      // Filtered log pages: `type` in list order.
      await logs.createIndex({ workspaceId: 1, type: 1, sentAt: -1, _id: -1 }, { name: 'workspace_type_sentAt' });
      // `recipient` exact or prefix (anchored regex = index range), newest first.
      await logs.createIndex({ workspaceId: 1, recipient: 1, sentAt: -1, _id: -1 }, { name: 'workspace_recipient_sentAt' });
      // "Every email about invoice inv_123": referenceKind/referenceId, newest first.
      await logs.createIndex(
        { workspaceId: 1, 'reference.kind': 1, 'reference.id': 1, sentAt: -1 },
        { name: 'workspace_reference_sentAt' },
      );
      // Daily stats: $match on a workspace's day range before $group.
      await logs.createIndex({ workspaceId: 1, day: 1 }, { name: 'workspace_day' });
      // Retention of stored content follows the entries.
      await contents.createIndex({ sentAt: 1 }, { name: 'sentAt' });
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

    async deleteBatchOlderThan(cutoff, batchSize) {
      // No sort: MongoDB serves the range from the sentAt index, and FerretDB 1.x (which sorts
      // in memory) stops scanning once it has a batch, oldest rows first.
      const batch = await logs
        .find({ sentAt: { $lt: cutoff } }, { projection: { _id: 1 } })
        .limit(batchSize)
        .toArray();
      if (batch.length === 0) return 0;
      const ids = batch.map((d) => d._id);
      const removed = await deleteByIds(logs, ids);
      await deleteByIds(contents, ids);
      return removed;
    },

    list(workspaceId, filter, { limit, after }) {
      return logs
        .find(emailLogMongoFilter(workspaceId, filter, after), { projection: LIST_PROJECTION })
        .sort({ sentAt: -1, _id: -1 })
        .limit(limit)
        .toArray();
    },

    scan(workspaceId, filter, batchSize = 1000) {
      return logs
        .find(emailLogMongoFilter(workspaceId, filter), { projection: LIST_PROJECTION })
        .sort({ sentAt: -1, _id: -1 })
        .batchSize(batchSize);
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

    async deleteContentOlderThan(cutoff, batchSize) {
      const batch = await contents
        .find({ sentAt: { $lt: cutoff } }, { projection: { _id: 1 } })
        .limit(batchSize)
        .toArray();
      if (batch.length === 0) return 0;
      return deleteByIds(
        contents,
        batch.map((d) => d._id),
      );
    },
  };
}
