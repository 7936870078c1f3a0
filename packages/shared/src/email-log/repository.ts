import type { Collection, Db, Filter } from 'mongodb';
import { createBatcher } from '../batcher';
import { CONTENT_INDEXES, ENTRY_INDEXES } from './indexes';
import { countUpTo } from './count-up-to';
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
   * Retention: removes every entry sent before `cutoff`, and every content document whose
   * `sentAt` (its entry's latest attempt) is before it, in slices of time holding fewer than
   * `batch` entries each, newest slice first; yields what each slice removed, so the caller can
   * pause between them. A run cut short is finished by the next.
   */
  removeSentBefore(cutoff: Date, batch: number): AsyncGenerator<{ removed: number; contentRemoved: number }, void, undefined>;
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

/** The first slice retention tries below the cut-off; slices then narrow or widen by 4. */
const RETENTION_FIRST_SLICE_MS = 3_600_000;

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
  /**
   * The content's `sentAt` follows its entry's latest attempt, so retention removes the two
   * together by ranges of time (removeSentBefore).
   */
  const followEntry = (o: SendOutcome) => contents.updateOne({ _id: o.id }, { $max: { sentAt: new Date(o.sentAt) } });

  const writeExisting = async (o: SendOutcome): Promise<boolean> => {
    const notOlder: Filter<EmailLogDoc> = {
      _id: o.id,
      status: { $in: OUTCOME_STATUSES },
      $or: [{ attempts: { $lt: o.attempts } }, { attempts: o.attempts, ...(o.status === 'sent' ? {} : { status: { $ne: 'sent' } }) }],
    };
    if ((await logs.updateOne(notOlder, { $set: outcomeFields(o) })).matchedCount !== 1) return false;
    await followEntry(o);
    return true;
  };

  // Most outcomes are an email's first: they go in as one unordered insert per batch, and only
  // the ids that already existed take the update path. A batch waits up to 100 ms for company,
  // so a busy worker writes its outcomes in batches of ~50 (an entry shows up at most 100 ms later).
  const outcomes = createBatcher<SendOutcome, boolean>(
    async (batch) => {
      // The content first, then the entries: an entry is never visible (listed, opened, resent)
      // before its content, which the detail, preview and resend read. A replay after a crash
      // between the two finds the content there and writes the entry.
      const contentExisting = await insertIgnoringDuplicates(
        contents,
        batch.map((o) => ({ ...o.content, _id: o.id, workspaceId: o.workspaceId, sentAt: new Date(o.sentAt) })),
      );
      const existing = await insertIgnoringDuplicates(
        logs,
        batch.map((o) => ({ _id: o.id, ...outcomeFields(o), ...NEW_ENTRY_FIELDS }) as EmailLogDoc),
      );
      return Promise.all(
        batch.map((o, i) => {
          if (existing.has(i)) return writeExisting(o).catch(toError);
          // A new entry whose content an earlier attempt wrote (a crash between the two inserts).
          if (contentExisting.has(i)) return followEntry(o).then(() => true, toError);
          return true;
        }),
      );
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

    /*
     * Deletes by ranges of `sentAt` (an index range each, both collections at once, two
     * sessions): on FerretDB 2 a range delete of 5,000 entries took 14 ms where the same 5,000
     * by `_id $in` took 169 ms after a 203 ms read of their ids. A slice whose count (which stops
     * at `batch`) is full is narrowed before it is deleted, an emptied one widens the next, and
     * the walk ends when nothing older is left in either collection.
     */
    async *removeSentBefore(cutoff, batch) {
      const before = (t: Date) => ({ sentAt: { $lt: t } });
      const anyBefore = async (t: Date) =>
        (await logs.findOne(before(t), { projection: { _id: 1 } })) !== null ||
        (await contents.findOne(before(t), { projection: { _id: 1 } })) !== null;
      let below = cutoff;
      let width = RETENTION_FIRST_SLICE_MS;
      while (await anyBefore(below)) {
        let from = new Date(below.getTime() - width);
        const slice = () => ({ sentAt: { $gte: from, $lt: below } });
        while (width > 1000 && (await countUpTo(logs, slice(), batch)) >= batch) {
          width /= 4;
          from = new Date(below.getTime() - width);
        }
        const [contentRemoved, removed] = await Promise.all([
          contents.deleteMany(slice()).then((r) => r.deletedCount),
          logs.deleteMany(slice()).then((r) => r.deletedCount),
        ]);
        yield { removed, contentRemoved };
        below = from;
        if (removed < batch / 4) width *= 4;
      }
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
