import type { Collection, Db, Document } from 'mongodb';
import { idTime } from './ids';

/*
 * Log entries and their content are kept in one collection per UTC month in which the email
 * was accepted (the time in its id): `email_logs_202611`, `email_contents_202611`. An entry is
 * found from its id alone, and retention drops a month whose entries have all expired as a
 * whole collection instead of deleting its documents one by one (on FerretDB 1.x a delete
 * reads every document it removes; on MongoDB a drop also leaves no fragmentation behind).
 * Ids without a time (hand-made ones in imports and tests) go to the undated `email_logs` /
 * `email_contents`, the partition named ''.
 */

/** `202611` for an id made in November 2026, '' for an id without a time. */
export function partitionOf(id: string): string {
  const t = idTime(id);
  return t === null ? '' : new Date(t).toISOString().slice(0, 7).replace('-', '');
}

/** The partition of a month (`2026-11` → `202611`). */
export const partitionOfMonth = (month: string) => month.replace('-', '');

async function dropIfExists(col: { drop(): Promise<unknown> }): Promise<void> {
  try {
    await col.drop();
  } catch (err) {
    // NamespaceNotFound: already gone (MongoDB before 7 reports it; later versions do not).
    if ((err as { code?: number }).code !== 26) throw err;
  }
}

const suffix = (part: string) => (part ? `_${part}` : '');
const PARTITION_NAME = /^email_logs(?:_(\d{6}))?$/;

export interface LogPartitions<L extends Document, C extends Document> {
  logs(part: string): Collection<L>;
  contents(part: string): Collection<C>;
  /** Creates a partition's indexes once per process, before its first write. */
  ensure(part: string): Promise<void>;
  /** Partitions that exist, newest first ('' last). */
  existing(): Promise<string[]>;
  /** Drops a partition's entries and content. */
  drop(part: string): Promise<void>;
}

export function createLogPartitions<L extends Document, C extends Document>(
  db: Db,
  createIndexes: (logs: Collection<L>, contents: Collection<C>) => Promise<void>,
): LogPartitions<L, C> {
  const ensured = new Map<string, Promise<void>>();
  const logs = (part: string) => db.collection<L>(`email_logs${suffix(part)}`);
  const contents = (part: string) => db.collection<C>(`email_contents${suffix(part)}`);
  return {
    logs,
    contents,
    ensure(part) {
      let p = ensured.get(part);
      if (!p) {
        p = createIndexes(logs(part), contents(part));
        ensured.set(part, p);
        p.catch(() => ensured.delete(part));
      }
      return p;
    },
    existing() {
      return existingPartitions(db);
    },
    async drop(part) {
      ensured.delete(part);
      // Content first: if a run stops between the two, the entries are still listed and the next
      // run drops both; the other way round would leave content that no run finds.
      await dropIfExists(contents(part));
      await dropIfExists(logs(part));
    },
  };
}

/** The collection holding the entry with this id (for code outside the repositories: tests, tools). */
export function entryCollection<T extends Document = Document>(db: Db, id: string): Collection<T> {
  return db.collection<T>(`email_logs${suffix(partitionOf(id))}`);
}

/** The collection holding the stored content of the email with this id. */
export function contentCollection<T extends Document = Document>(db: Db, id: string): Collection<T> {
  return db.collection<T>(`email_contents${suffix(partitionOf(id))}`);
}

/** Every partition's entry collection, newest first. */
export async function entryCollections<T extends Document = Document>(db: Db): Promise<Array<Collection<T>>> {
  return (await existingPartitions(db)).map((part) => db.collection<T>(`email_logs${suffix(part)}`));
}

/** The partitions that exist, newest first, the undated one ('') last. */
async function existingPartitions(db: Db): Promise<string[]> {
  const names = await db.listCollections({}, { nameOnly: true }).toArray();
  const parts = names.flatMap((c) => {
    const m = PARTITION_NAME.exec(c.name);
    return m ? [m[1] ?? ''] : [];
  });
  return parts.sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a < b ? 1 : -1));
}
