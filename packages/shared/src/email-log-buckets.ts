import type { Collection, Db } from 'mongodb';
import { partitionOf, partitionOfMonth } from './email-log-partitions';
import { isDuplicateKeyError } from './mongo';
import { createPartsCheck } from './email-log-parts-check';

/*
 * Time buckets of the email log. Every entry stores the UTC month, day and hour of its `sentAt`
 * as plain fields, and a small directory (`email_log_days`, one document per workspace and day
 * with a count per hour) says which buckets hold a workspace's entries. A page of the log is
 * then read bucket by bucket, newest first, each read an equality on a bucket field plus the
 * workspace, and retention removes whole buckets.
 *
 * Why: on MongoDB each bucket read is an index range like any other, but FerretDB 1.x (our test
 * and dev server) can push only top-level equalities down to its storage and sorts in memory,
 * so a query must not match more than a few hundred documents to stay fast. The directory lets
 * the reader pick, per stretch of time, the coarsest bucket that stays that small.
 */

export interface LogBuckets {
  /** `2026-11` */
  month: string;
  /** `2026-11-27` */
  day: string;
  /** `2026-11-27T14` */
  hour: string;
}

export function logBuckets(sentAt: Date | string): LogBuckets {
  const iso = new Date(sentAt).toISOString();
  return { month: iso.slice(0, 7), day: iso.slice(0, 10), hour: iso.slice(0, 13) };
}

/**
 * The bucket fields stored on an entry: `day` and `hour` (retention removes them across
 * workspaces; stats group by day) and the workspace's own buckets, `wsMonth`, `wsDay`, `wsHour`
 * (`<workspaceId>|2026-11-27T14`), which pages read by. One field naming workspace and bucket
 * keeps a page read a lookup of a few hundred entries even in a workspace with millions.
 */
export interface EntryBuckets {
  day: string;
  hour: string;
  wsMonth: string;
  wsDay: string;
  wsHour: string;
}

export function entryBuckets(workspaceId: string, sentAt: Date | string): EntryBuckets {
  const b = logBuckets(sentAt);
  return {
    day: b.day,
    hour: b.hour,
    wsMonth: `${workspaceId}|${b.month}`,
    wsDay: `${workspaceId}|${b.day}`,
    wsHour: `${workspaceId}|${b.hour}`,
  };
}

/** The entry field a page reads a bucket by. */
export const WORKSPACE_BUCKET_FIELD = { month: 'wsMonth', day: 'wsDay', hour: 'wsHour' } as const;

/**
 * One workspace's entries of one UTC month, counted per day (`d01` … `d31`). Counts only grow (a
 * retry that moves an entry to a later hour counts it again), so they are an upper bound used to
 * plan reads, never shown. Kept small on purpose: reading it is part of every page.
 */
export interface LogMonthDoc {
  _id: string; // `${workspaceId}|${month}`
  workspaceId: string;
  month: string;
  days: Record<string, number>;
  /**
   * The partitions (email-log-partitions.ts) holding entries sent this month: the month's own,
   * and an earlier one for an email accepted then and sent (retried) this month.
   */
  parts?: string[];
}

/** One workspace's entries of one UTC day, per hour (`h00` … `h23`): read only for busy days. */
export interface LogDayHoursDoc {
  _id: string; // `${workspaceId}|${day}`
  workspaceId: string;
  day: string;
  hours: Record<string, number>;
}

export interface LogDay {
  day: string;
  count: number;
}

export function daysOf(doc: LogMonthDoc): LogDay[] {
  return Object.entries(doc.days ?? {}).map(([d, count]) => ({ day: `${doc.month}-${d.slice(1)}`, count }));
}

export type BucketField = keyof LogBuckets;
export interface BucketRead {
  /** A bucket, or `before`: every entry sent before `value` (an ISO time). */
  field: BucketField | 'before';
  value: string;
  /** Entries the directory counts in the bucket. */
  count: number;
  /** The partitions holding them. */
  parts: string[];
}

export interface LogDirectory {
  ensureIndexes(): Promise<void>;
  /** Counts entries into their workspace's buckets; call before the entries are written. */
  register(entries: ReadonlyArray<{ id: string; workspaceId: string; sentAt: Date | string }>): Promise<void>;
  /** Resolves once this process has checked the partition names it registered (see email-log-parts-check.ts). */
  partsChecked(): Promise<void>;
  /** A workspace's month documents (a handful: one per month it sent in). */
  workspaceMonths(workspaceId: string): Promise<LogMonthDoc[]>;
  /** A workspace's counts per hour of one day (`h00` → n). */
  workspaceHours(workspaceId: string, day: string): Promise<Record<string, number>>;
  /** Every workspace's month documents up to `month`, inclusive (retention). */
  monthsUpTo(month: string): Promise<LogMonthDoc[]>;
  /** Every workspace's month documents from `month` on, inclusive (retention). */
  monthsFrom(month: string): Promise<LogMonthDoc[]>;
  /** Every workspace's counts per hour of one day, summed (retention). */
  hoursOfDay(day: string): Promise<Record<string, number>>;
  /** Retention removed one hour of a day, or the whole day, in every workspace. */
  forget(day: string, hourKey?: string): Promise<void>;
  /** Retention removed every month before `month`. */
  forgetMonthsBefore(month: string): Promise<void>;
}

async function upsertInc<T extends { _id: string }>(
  col: Collection<T>,
  id: string,
  inc: Record<string, number>,
  init: Record<string, string>,
  parts?: Set<string>,
) {
  const addParts = parts ? { $addToSet: { parts: { $each: [...parts] } } } : {};
  const write = () => col.updateOne({ _id: id } as never, { $inc: inc, $setOnInsert: init, ...addParts } as never, { upsert: true });
  // Two writers creating the same document at once: the loser finds it there on its second try.
  await write().catch((e: unknown) => (isDuplicateKeyError(e) ? write() : Promise.reject(e)));
}

export function createLogDirectory(logsDb: Db): LogDirectory {
  const months: Collection<LogMonthDoc> = logsDb.collection('email_log_months');
  const hours: Collection<LogDayHoursDoc> = logsDb.collection('email_log_hours');
  // Re-adds a partition name a concurrent writer dropped on FerretDB (email-log-parts-check.ts).
  const partsCheck = createPartsCheck(months);

  return {
    async ensureIndexes() {
      // workspaceMonths(): a workspace's months.
      await months.createIndex({ workspaceId: 1, month: -1 }, { name: 'workspace_month' });
      // Retention: the months up to the cut-off, every workspace.
      await months.createIndex({ month: 1 }, { name: 'month' });
      // Retention: one day's hours, every workspace (a workspace's own are read by _id).
      await hours.createIndex({ day: 1 }, { name: 'day' });
    },

    async register(entries) {
      const byMonth = new Map<string, { workspaceId: string; month: string; inc: Record<string, number>; parts: Set<string> }>();
      const byDay = new Map<string, { workspaceId: string; day: string; inc: Record<string, number> }>();
      for (const e of entries) {
        const b = logBuckets(e.sentAt);
        const m = byMonth.get(`${e.workspaceId}|${b.month}`) ?? { workspaceId: e.workspaceId, month: b.month, inc: {}, parts: new Set() };
        byMonth.set(`${e.workspaceId}|${b.month}`, m);
        m.parts.add(partitionOf(e.id));
        const dk = `days.d${b.day.slice(8, 10)}`;
        m.inc[dk] = (m.inc[dk] ?? 0) + 1;
        const d = byDay.get(`${e.workspaceId}|${b.day}`) ?? { workspaceId: e.workspaceId, day: b.day, inc: {} };
        byDay.set(`${e.workspaceId}|${b.day}`, d);
        const hk = `hours.h${b.hour.slice(11, 13)}`;
        d.inc[hk] = (d.inc[hk] ?? 0) + 1;
      }
      const writes = [
        ...[...byMonth].map(
          ([id, g]) =>
            () =>
              upsertInc(months, id, g.inc, { workspaceId: g.workspaceId, month: g.month }, g.parts),
        ),
        ...[...byDay].map(
          ([id, g]) =>
            () =>
              upsertInc(hours, id, g.inc, { workspaceId: g.workspaceId, day: g.day }),
        ),
      ];
      // A few at a time: usually two or four documents per batch of outcomes.
      for (let i = 0; i < writes.length; i += 8) await Promise.all(writes.slice(i, i + 8).map((w) => w()));
      for (const [id, g] of byMonth) partsCheck.watch(id, g.parts);
    },
    partsChecked: () => partsCheck.idle(),

    workspaceMonths(workspaceId) {
      return months.find({ workspaceId }).toArray();
    },

    async workspaceHours(workspaceId, day) {
      return (await hours.findOne({ _id: `${workspaceId}|${day}` }))?.hours ?? {};
    },

    monthsUpTo(month) {
      return months.find({ month: { $lte: month } }).toArray();
    },

    monthsFrom(month) {
      return months.find({ month: { $gte: month } }).toArray();
    },

    async hoursOfDay(day) {
      const sum: Record<string, number> = {};
      for (const doc of await hours.find({ day }).toArray()) {
        for (const [k, n] of Object.entries(doc.hours ?? {})) sum[k] = (sum[k] ?? 0) + n;
      }
      return sum;
    },

    async forget(day, hourKey) {
      if (hourKey) {
        await hours.updateMany({ day }, { $unset: { [`hours.${hourKey}`]: '' } });
        return;
      }
      await months.updateMany({ month: day.slice(0, 7) }, { $unset: { [`days.d${day.slice(8, 10)}`]: '' } });
      await hours.deleteMany({ day });
    },

    async forgetMonthsBefore(month) {
      await months.deleteMany({ month: { $lt: month } });
    },
  };
}

/** Which part of the day list a read covers: days in [fromDay, toDay] (inclusive, either open). */
export interface DayRange {
  fromDay?: string;
  toDay?: string;
}

/**
 * The bucket reads that cover a workspace's entries in `range`, newest first, each expected to
 * match at most `maxPerRead` entries where the directory allows: everything older at once when
 * the whole workspace matches that little, else a whole month when the month is small, else a
 * day, else an hour (`hoursOf` is asked only for such busy days). `ratio()` is the share of
 * counted entries the filter has been matching so far (1 when unknown): a selective filter gets
 * coarser reads.
 */
export async function* planBucketReads(
  monthDocs: readonly LogMonthDoc[],
  range: DayRange,
  maxPerRead: number,
  hoursOf: (day: string) => Promise<Record<string, number>>,
  ratio: () => number = () => 1,
): AsyncGenerator<BucketRead> {
  const inRange = (day: string) => (!range.fromDay || day >= range.fromDay) && (!range.toDay || day <= range.toDay);
  const months = [...monthDocs]
    .sort((a, b) => (a.month < b.month ? 1 : -1))
    .map((doc) => {
      const all = daysOf(doc).sort((a, b) => (a.day < b.day ? 1 : -1));
      return {
        month: doc.month,
        parts: doc.parts ?? [partitionOfMonth(doc.month)],
        count: all.reduce((n, d) => n + d.count, 0),
        wanted: all.filter((d) => d.count > 0 && inRange(d.day)),
      };
    });
  // A read of "everything older" returns every match of the workspace (a time bound is checked
  // after the read), so it is planned on the workspace's total.
  const total = months.reduce((n, m) => n + m.count, 0);
  const rest = (before: string, i: number): BucketRead => ({
    field: 'before',
    value: before,
    count: total,
    parts: [...new Set(months.slice(i).flatMap((m) => m.parts))],
  });
  for (const [i, m] of months.entries()) {
    if (m.wanted.length === 0) continue;
    if (total * ratio() <= maxPerRead) return yield rest(nextMonthStart(m.month), i);
    if (m.count * ratio() <= maxPerRead) {
      yield { field: 'month', value: m.month, count: m.count, parts: m.parts };
      continue;
    }
    for (const d of m.wanted) {
      if (total * ratio() <= maxPerRead) return yield rest(nextDayStart(d.day), i);
      if (d.count * ratio() <= maxPerRead) {
        yield { field: 'day', value: d.day, count: d.count, parts: m.parts };
        continue;
      }
      const perHour = await hoursOf(d.day);
      for (const h of Object.keys(perHour).sort().reverse()) {
        const n = perHour[h] ?? 0;
        if (n > 0) yield { field: 'hour', value: `${d.day}T${h.slice(1)}`, count: n, parts: m.parts };
      }
    }
  }
}

const nextMonthStart = (month: string) => {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 1)).toISOString();
};
const nextDayStart = (day: string) => new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString();
