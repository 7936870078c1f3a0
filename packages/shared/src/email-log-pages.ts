import type { Collection, Filter } from 'mongodb';
import { planBucketReads, WORKSPACE_BUCKET_FIELD, type BucketRead, type DayRange, type LogDirectory } from './email-log-buckets';
import { emailLogMongoFilter } from './email-log-filter';
import type { EmailLogCursor, EmailLogFilter } from './email-log-query';
import type { EmailLogDoc } from './email-log.repository';

/*
 * Reading the email log in list order (sentAt desc, _id desc) bucket by bucket: the buckets are
 * disjoint stretches of time read newest first, so their results simply follow one another.
 */

/** Largest number of entries one bucket read is planned to match (see email-log-buckets.ts). */
export const MAX_PER_BUCKET_READ = 150;

/** Pages and exports leave out what only the detail view shows. */
const LIST_PROJECTION = { metadata: 0, timeline: 0, eventIds: 0 } as const;
const LIST_SORT = { sentAt: -1, _id: -1 } as const;

/** The days a read can touch: since/until and the cursor bound them. */
function dayRange(filter: EmailLogFilter, after?: EmailLogCursor): DayRange {
  const to = [filter.until, after?.sentAt].filter((d): d is Date => !!d).map((d) => d.toISOString().slice(0, 10));
  return {
    ...(filter.since ? { fromDay: filter.since.toISOString().slice(0, 10) } : {}),
    ...(to.length ? { toDay: to.sort()[0] } : {}),
  };
}

/**
 * A filter made only of top-level equalities matches what the server's index (or FerretDB's
 * pushed-down condition) returns, so its match rate tells how large the next reads will be.
 * Other filters are checked after the read, and the read costs the whole bucket.
 */
function onlyEqualities(f: EmailLogFilter): boolean {
  return (
    !f.contains &&
    !(f.recipient && 'prefix' in f.recipient) &&
    (f.statuses?.length ?? 1) === 1 &&
    (f.types?.length ?? 1) === 1 &&
    !f.reference &&
    !!(f.statuses || f.types || f.sendMethod || f.recipient)
  );
}

/** (sentAt desc, _id desc), the list order. */
const newerFirst = (a: EmailLogDoc, b: EmailLogDoc) =>
  b.sentAt.getTime() - a.sentAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0);

export function createEmailLogPages(logsIn: (part: string) => Collection<EmailLogDoc>, directory: LogDirectory) {
  const reads = async (workspaceId: string, filter: EmailLogFilter, after: EmailLogCursor | undefined, stats: Ratio) =>
    planBucketReads(
      await directory.workspaceMonths(workspaceId),
      dayRange(filter, after),
      MAX_PER_BUCKET_READ,
      (day) => directory.workspaceHours(workspaceId, day),
      stats.ratio,
    );

  const query = (workspaceId: string, filter: EmailLogFilter, after: EmailLogCursor | undefined, bucket: BucketRead) => {
    const base = emailLogMongoFilter(workspaceId, filter, after);
    if (bucket.field === 'before') {
      return { ...base, $and: [...(base.$and ?? []), { sentAt: { $lt: new Date(bucket.value) } }] } as Filter<EmailLogDoc>;
    }
    // The workspace's bucket names the workspace: a second condition on `workspaceId` would only
    // make the server intersect with every entry of the workspace (FerretDB on PostgreSQL does).
    const { workspaceId: _scoped, ...rest } = base as Record<string, unknown>;
    return { ...rest, [WORKSPACE_BUCKET_FIELD[bucket.field]]: `${workspaceId}|${bucket.value}` } as Filter<EmailLogDoc>;
  };

  return {
    /** One page of the log, newest first (sentAt desc, _id desc), strictly after `after`. */
    async list(workspaceId: string, filter: EmailLogFilter, opts: { limit: number; after?: EmailLogCursor }): Promise<EmailLogDoc[]> {
      const stats = new Ratio(onlyEqualities(filter));
      const out: EmailLogDoc[] = [];
      for await (const bucket of await reads(workspaceId, filter, opts.after, stats)) {
        const want = opts.limit - out.length;
        // Usually one partition; two when emails accepted last month were sent this month.
        const found = await Promise.all(
          bucket.parts.map((part) =>
            logsIn(part)
              .find(query(workspaceId, filter, opts.after, bucket), { projection: LIST_PROJECTION })
              .sort(LIST_SORT)
              .limit(want)
              .toArray(),
          ),
        );
        const docs = found.length === 1 ? found[0]! : found.flat().sort(newerFirst).slice(0, want);
        stats.add(bucket.count, docs.length);
        out.push(...docs);
        if (out.length >= opts.limit) break;
      }
      return out;
    },

    /** Every matching entry in list order, read in batches (the CSV export); stops when the caller does. */
    async *scan(workspaceId: string, filter: EmailLogFilter, batchSize = 1000): AsyncGenerator<EmailLogDoc, void, undefined> {
      const stats = new Ratio(onlyEqualities(filter));
      for await (const bucket of await reads(workspaceId, filter, undefined, stats)) {
        const read = (part: string) =>
          logsIn(part)
            .find(query(workspaceId, filter, undefined, bucket), { projection: LIST_PROJECTION })
            .sort(LIST_SORT)
            .batchSize(batchSize);
        let n = 0;
        if (bucket.parts.length === 1) {
          const cursor = read(bucket.parts[0]!);
          try {
            for await (const doc of cursor) {
              n++;
              yield doc;
            }
          } finally {
            await cursor.close();
          }
        } else {
          // Rare (a month with emails accepted the month before): merged in memory, one bucket at a time.
          const docs = (await Promise.all(bucket.parts.map((part) => read(part).toArray()))).flat().sort(newerFirst);
          n = docs.length;
          yield* docs;
        }
        stats.add(bucket.count, n);
      }
    },
  };
}

/** Share of the directory's counted entries that a filter matched so far. */
class Ratio {
  private counted = 0;
  private matched = 0;
  constructor(private readonly useful: boolean) {}
  add(counted: number, matched: number) {
    this.counted += counted;
    this.matched += matched;
  }
  // (matched + 1) / (counted + 1): one empty read of a few entries does not yet make a filter selective.
  readonly ratio = () => (this.useful && this.counted > 0 ? Math.max(0.002, (this.matched + 1) / (this.counted + 1)) : 1);
}
