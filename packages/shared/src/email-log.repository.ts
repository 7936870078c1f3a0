import type { Collection, Db } from 'mongodb';
import { isDuplicateKeyError } from './mongo';
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
}

export function createEmailLogRepository(db: Db): EmailLogRepository {
  const logs: Collection<EmailLogDoc> = db.collection('email_logs');
  const contents: Collection<EmailContentDoc> = db.collection('email_contents');

  return {
    async ensureIndexes() {
      // The log page: a workspace's entries newest first, with the id as tie-breaker for cursors.
      await logs.createIndex({ workspaceId: 1, sentAt: -1, _id: -1 }, { name: 'workspace_sentAt' });
      // Delivery events that carry only the provider's id.
      await logs.createIndex({ providerMessageId: 1 }, { name: 'providerMessageId' });
      // Retention: entries older than the cut-off, oldest first.
      await logs.createIndex({ sentAt: 1 }, { name: 'sentAt' });
      // Retention of stored content follows the entries.
      await contents.createIndex({ sentAt: 1 }, { name: 'sentAt' });
    },

    async recordOutcome(o) {
      const sentAt = new Date(o.sentAt);
      const { content, ...entry } = o;
      await contents.replaceOne({ _id: o.id }, { ...content, workspaceId: o.workspaceId, sentAt }, { upsert: true });
      try {
        await logs.updateOne(
          { _id: o.id, attempts: { $lte: o.attempts }, status: { $in: OUTCOME_STATUSES } },
          {
            $set: {
              workspaceId: entry.workspaceId,
              status: entry.status,
              recipient: entry.recipient,
              type: entry.type,
              from: entry.from,
              subject: entry.subject,
              sendMethod: entry.sendMethod,
              messageId: entry.messageId,
              providerMessageId: entry.providerMessageId,
              error: entry.error,
              errorCode: entry.errorCode,
              errorHint: entry.errorHint,
              attempts: entry.attempts,
              nextRetryAt: entry.nextRetryAt ? new Date(entry.nextRetryAt) : null,
              reference: entry.reference,
              metadata: entry.metadata,
              resendOf: entry.resendOf,
              createdAt: new Date(entry.createdAt),
              sentAt,
              day: o.sentAt.slice(0, 10),
              updatedAt: new Date(),
            },
            $setOnInsert: {
              resendCount: 0,
              lastResentAt: null,
              resends: [],
              deliveredAt: null,
              openedAt: null,
              opens: 0,
              clickedAt: null,
              clicks: 0,
            },
          },
          { upsert: true },
        );
        return true;
      } catch (err) {
        // The filter did not match an existing entry, so the upsert tried to insert its _id:
        // the stored entry is newer than this outcome.
        if (isDuplicateKeyError(err)) return false;
        throw err;
      }
    },

    findById(workspaceId, id) {
      return logs.findOne({ _id: id, workspaceId });
    },

    getContent(workspaceId, id) {
      return contents.findOne({ _id: id, workspaceId });
    },

    async deleteBatchOlderThan(cutoff, batchSize) {
      // Uses the sentAt index; deleting by id keeps each batch small and bounded.
      const batch = await logs
        .find({ sentAt: { $lt: cutoff } }, { projection: { _id: 1 } })
        .sort({ sentAt: 1 })
        .limit(batchSize)
        .toArray();
      if (batch.length === 0) return 0;
      const ids = batch.map((d) => d._id);
      const r = await logs.deleteMany({ _id: { $in: ids } });
      await contents.deleteMany({ _id: { $in: ids } });
      return r.deletedCount;
    },

    async deleteContentOlderThan(cutoff, batchSize) {
      const batch = await contents
        .find({ sentAt: { $lt: cutoff } }, { projection: { _id: 1 } })
        .limit(batchSize)
        .toArray();
      if (batch.length === 0) return 0;
      const r = await contents.deleteMany({ _id: { $in: batch.map((d) => d._id) } });
      return r.deletedCount;
    },
  };
}
