import type { Collection, Db, Filter, UpdateFilter } from 'mongodb';
import {
  applyEvents,
  deliveryEventJobId,
  EVENT_ERROR_CODES,
  resolveUnknownHandOff,
  suppresses,
  type DeliveryEvent,
  type EventFields,
  type ReduceContext,
} from './events';
import type { EmailLogDoc } from '../repository';
import { EMAIL_LOGS } from '../repository';
import { ERROR_HINTS } from '../../smtp-errors';

/** An event we could not match to an entry after every retry (`orphan_events`, logs database). */
export interface OrphanEventDoc {
  _id: string; // deliveryEventJobId
  event: DeliveryEvent;
  reason: string;
  attempts: number;
  recordedAt: Date;
}

/** What happened to one event of a batch. */
export type ApplyResult =
  | { kind: 'applied'; emailId: string; workspaceId: string }
  | { kind: 'duplicate'; emailId: string; workspaceId: string }
  /** No entry yet (or it is still between send attempts): retry later. */
  | { kind: 'missing' };

/** A hard bounce or complaint that was applied (or met again): the caller adds the suppression, an idempotent upsert. */
export interface SuppressionRequest {
  workspaceId: string;
  address: string;
  reason: 'hard_bounce' | 'complaint';
  emailId: string;
  detail: string | null;
}

export interface EmailEventsRepository {
  ensureIndexes(): Promise<void>;
  /**
   * Applies a batch: one read of the entries involved, one fold per entry, one write per changed entry.
   * Results are in the order of `events`.
   */
  applyBatch(events: readonly DeliveryEvent[]): Promise<{ results: ApplyResult[]; suppress: SuppressionRequest[] }>;
  recordOrphan(event: DeliveryEvent, reason: string, attempts: number): Promise<void>;
  listOrphans(limit: number): Promise<OrphanEventDoc[]>;
  /**
   * Orphans whose entry has appeared since (handed off: not `queued`), oldest first, from the
   * `limit` oldest orphans: two reads however many there are.
   */
  adoptableOrphans(limit: number): Promise<OrphanEventDoc[]>;
  /** Forgets orphans once their events are queued again. */
  removeOrphans(ids: readonly string[]): Promise<number>;
  /** Forgets orphans kept since before `cutoff`: their entry, if it ever comes, is past retention. */
  removeOrphansRecordedBefore(cutoff: Date): Promise<number>;
}

type UpdateOp = { id: string; filter: Filter<EntryDoc>; update: UpdateFilter<EntryDoc> };
type EntryDoc = Pick<EmailLogDoc, '_id' | 'workspaceId' | 'recipient' | 'status' | 'errorCode' | 'sentAt' | 'providerMessageId'> &
  Partial<EventFields> & { eventsVersion?: number | null };

const EVENT_FIELD_NAMES = [
  'status',
  'deliveredAt',
  'openedAt',
  'opens',
  'clickedAt',
  'clicks',
  'bouncedAt',
  'bounceType',
  'bounceDetail',
  'complainedAt',
  'failedAt',
  'failDetail',
  'timeline',
  'eventIds',
] as const;
const PROJECTION = Object.fromEntries(
  [...EVENT_FIELD_NAMES, 'workspaceId', 'recipient', 'errorCode', 'sentAt', 'providerMessageId', 'eventsVersion'].map((f) => [f, 1]),
);
/** How often a batch re-reads entries another writer changed under it before giving up on them. */
const MAX_CONFLICT_ROUNDS = 5;
/** Writes of one batch in flight at once; one entry per statement tells exactly which lost the version race. */
const DB_CONCURRENCY = 16;

function fieldsOf(doc: EntryDoc): EventFields {
  return {
    status: doc.status,
    deliveredAt: doc.deliveredAt ?? null,
    openedAt: doc.openedAt ?? null,
    opens: doc.opens ?? 0,
    clickedAt: doc.clickedAt ?? null,
    clicks: doc.clicks ?? 0,
    bouncedAt: doc.bouncedAt ?? null,
    bounceType: doc.bounceType ?? null,
    bounceDetail: doc.bounceDetail ?? null,
    complainedAt: doc.complainedAt ?? null,
    failedAt: doc.failedAt ?? null,
    failDetail: doc.failDetail ?? null,
    timeline: doc.timeline ?? [],
    eventIds: doc.eventIds ?? [],
  };
}

/** Whether the entry's hand-off ended unknown: the final dot went out and no answer was recorded. */
const handOffUnknown = (doc: EntryDoc) => doc.status === 'send_failed' && doc.errorCode === 'EHANDOFF_UNKNOWN';

/**
 * The Error column follows an event-driven failure; a later `delivered` over a soft bounce clears
 * it, and so does any event for an entry whose hand-off was unknown.
 */
function errorFields(f: EventFields, doc: EntryDoc): Record<string, unknown> {
  const code = EVENT_ERROR_CODES[f.status];
  if (code) {
    const detail = f.status === 'bounced' ? f.bounceDetail : f.status === 'failed' ? f.failDetail : null;
    const hintKey = f.status === 'bounced' ? `${code}_${(f.bounceType ?? 'soft').toUpperCase()}` : code;
    return { error: detail, errorCode: code, errorHint: ERROR_HINTS[hintKey] ?? ERROR_HINTS[code] ?? null };
  }
  if (doc.status in EVENT_ERROR_CODES || handOffUnknown(doc)) return { error: null, errorCode: null, errorHint: null };
  return {};
}

export function createEmailEventsRepository(logsDb: Db, opts: { machineWindowMs: number }): EmailEventsRepository {
  const entries = logsDb.collection<EntryDoc>(EMAIL_LOGS);
  const orphans: Collection<OrphanEventDoc> = logsDb.collection('orphan_events');

  /**
   * The entries a batch touches, in one read by our ids and one by the provider's ids (for events
   * that carry only those; `providerMessageId` is indexed).
   */
  const load = async (events: readonly DeliveryEvent[]) => {
    const ids = [...new Set(events.flatMap((e) => (e.emailId ? [e.emailId] : [])))];
    const pids = [...new Set(events.flatMap((e) => (!e.emailId && e.providerMessageId ? [e.providerMessageId] : [])))];
    const found = await Promise.all([
      ids.length ? entries.find({ _id: { $in: ids } }, { projection: PROJECTION }).toArray() : [],
      pids.length ? entries.find({ providerMessageId: { $in: pids } }, { projection: PROJECTION }).toArray() : [],
    ]);
    const docs = new Map<string, EntryDoc>();
    const pidToId = new Map<string, string>();
    for (const d of found.flat()) {
      docs.set(d._id, d);
      if (d.providerMessageId) pidToId.set(d.providerMessageId, d._id);
    }
    return { docs, resolve: (e: DeliveryEvent) => e.emailId ?? (e.providerMessageId ? pidToId.get(e.providerMessageId) : undefined) };
  };

  return {
    async ensureIndexes() {
      // Looking up orphans by when they were kept (operators, and a later re-apply).
      await orphans.createIndex({ recordedAt: 1 }, { name: 'recordedAt' });
    },

    async applyBatch(events) {
      const results: ApplyResult[] = events.map(() => ({ kind: 'missing' }));
      const suppress: SuppressionRequest[] = [];
      let pending = events.map((e, i) => ({ e, i }));

      for (let round = 0; round < MAX_CONFLICT_ROUNDS && pending.length; round++) {
        const { docs, resolve } = await load(pending.map((p) => p.e));
        const groups = new Map<string, typeof pending>();
        for (const p of pending) {
          const id = resolve(p.e);
          const doc = id ? docs.get(id) : undefined;
          // An entry still between send attempts has not been handed off: its events are early.
          if (!doc || doc.status === 'queued') continue;
          const group = groups.get(doc._id);
          if (group) group.push(p);
          else groups.set(doc._id, [p]);
        }

        const ops: UpdateOp[] = [];
        const written: Array<{ doc: EntryDoc; items: typeof pending }> = [];
        for (const [id, items] of groups) {
          const doc = docs.get(id)!;
          const before = fieldsOf(doc);
          const ctx: ReduceContext = { sentAt: doc.sentAt ?? null, machineWindowMs: opts.machineWindowMs };
          const evs = items.map((p) => p.e);
          const after = handOffUnknown(doc) ? resolveUnknownHandOff(before, evs, ctx) : applyEvents(before, evs, ctx);
          for (const p of items) {
            const applied = !before.eventIds.includes(deliveryEventJobId(p.e));
            results[p.i] = { kind: applied ? 'applied' : 'duplicate', emailId: id, workspaceId: doc.workspaceId };
          }
          // Nothing new for the entry. A hard bounce or complaint seen again still asks for its
          // suppression (an upsert): the worker that applied it may have died before adding it.
          if (after === before) {
            suppress.push(...suppressionsFor(doc, items));
            continue;
          }
          ops.push({
            id,
            // The version guard makes this read-modify-write safe against other event workers: the
            // update matches only the version that was read (one statement, atomic on MongoDB and
            // on DocumentDB alike); a writer that lost re-reads and redoes what is missing.
            filter: { _id: id, eventsVersion: doc.eventsVersion ?? null },
            update: {
              $set: { ...after, ...errorFields(after, doc), eventsVersion: (doc.eventsVersion ?? 0) + 1, updatedAt: new Date() },
            },
          });
          written.push({ doc, items });
        }
        if (ops.length === 0) break;
        const won = await mapLimit(ops, async (op) => (await entries.updateOne(op.filter, op.update)).matchedCount === 1);
        for (const [k, w] of written.entries()) if (won[k]) suppress.push(...suppressionsFor(w.doc, w.items));
        const lost = written.filter((_, k) => !won[k]);
        if (lost.length === 0) break;
        // Someone else moved these entries on: re-read and redo exactly the events not yet in them.
        const fresh = new Map(
          (await entries.find({ _id: { $in: lost.map((w) => w.doc._id) } }, { projection: { eventIds: 1 } }).toArray()).map((d) => [
            d._id,
            d,
          ]),
        );
        pending = [];
        for (const w of lost) {
          const seen = new Set(fresh.get(w.doc._id)?.eventIds ?? []);
          const missing = w.items.filter((p) => !seen.has(deliveryEventJobId(p.e)));
          if (missing.length === 0) suppress.push(...suppressionsFor(w.doc, w.items));
          else pending.push(...missing);
        }
        for (const p of pending) results[p.i] = { kind: 'missing' };
      }
      return { results, suppress };
    },

    async recordOrphan(event, reason, attempts) {
      await orphans.updateOne(
        { _id: deliveryEventJobId(event) },
        { $setOnInsert: { event, reason, attempts, recordedAt: new Date() } },
        { upsert: true },
      );
    },

    listOrphans(limit) {
      return orphans.find({}).sort({ recordedAt: -1 }).limit(limit).toArray();
    },

    async adoptableOrphans(limit) {
      const oldest = await orphans.find({}).sort({ recordedAt: 1 }).limit(limit).toArray();
      if (oldest.length === 0) return [];
      const { docs, resolve } = await load(oldest.map((o) => o.event));
      return oldest.filter((o) => {
        const id = resolve(o.event);
        const doc = id ? docs.get(id) : undefined;
        return doc !== undefined && doc.status !== 'queued';
      });
    },

    async removeOrphansRecordedBefore(cutoff) {
      return (await orphans.deleteMany({ recordedAt: { $lt: cutoff } })).deletedCount;
    },

    async removeOrphans(ids) {
      if (ids.length === 0) return 0;
      return (await orphans.deleteMany({ _id: { $in: [...ids] } })).deletedCount;
    },
  };
}

/** `fn` over `items`, DB_CONCURRENCY at a time; results in the order of `items`. */
async function mapLimit<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(DB_CONCURRENCY, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

function suppressionsFor(doc: EntryDoc, items: ReadonlyArray<{ e: DeliveryEvent }>): SuppressionRequest[] {
  return items.flatMap(({ e }) => {
    const reason = suppresses(e);
    return reason ? [{ workspaceId: doc.workspaceId, address: doc.recipient, reason, emailId: doc._id, detail: e.detail ?? null }] : [];
  });
}
