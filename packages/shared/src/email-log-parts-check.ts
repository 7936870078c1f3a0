import type { Collection } from 'mongodb';

/*
 * FerretDB 1.x applies an update as a read, then a write by `_id`: when two worker processes add
 * different partition names to the same month document at the same instant (at a month's end,
 * one writes an email accepted last month, the other one accepted this month), the later write
 * can drop the earlier name, and pages of that month would not read that partition. On MongoDB
 * `$addToSet` is atomic and this never happens.
 *
 * So each process checks, a moment after it first added a (month document, partition) pair, that
 * the name is there, adds it again if it is not, and checks again. A racing writer's read and
 * write are milliseconds apart, so a check a second later sees the settled document.
 */

export interface PartsDoc {
  _id: string;
  parts?: string[];
}

export interface PartsCheck {
  /** Schedules a check of these names in the month document `id` (once per pair and process). */
  watch(id: string, parts: Iterable<string>): void;
  /** Resolves when no check is scheduled or running (tests, shutdown). */
  idle(): Promise<void>;
}

/** How long after a write a check looks, and how many times before it leaves the pair to a later write. */
const DELAY_MS = 1000;
const MAX_ROUNDS = 10;

export function createPartsCheck<T extends PartsDoc>(months: Collection<T>): PartsCheck {
  // Pairs this process has seen settled (or is checking): a pair is checked once per process.
  const known = new Set<string>();
  const running = new Set<Promise<void>>();

  const check = async (id: string, part: string): Promise<void> => {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      await new Promise((r) => setTimeout(r, DELAY_MS).unref());
      try {
        const doc = await months.findOne({ _id: id } as never, { projection: { parts: 1 } });
        if (doc?.parts?.includes(part)) return;
        await months.updateOne({ _id: id } as never, { $addToSet: { parts: part } } as never);
      } catch {
        // The database is away: the next round tries again.
      }
    }
    // Still not settled (the database away all along): a later write of the pair checks again.
    known.delete(`${id}\n${part}`);
  };

  return {
    watch(id, parts) {
      for (const part of parts) {
        const key = `${id}\n${part}`;
        if (known.has(key)) continue;
        known.add(key);
        const p: Promise<void> = check(id, part).finally(() => running.delete(p));
        running.add(p);
      }
    },
    async idle() {
      while (running.size) await Promise.all(running);
    },
  };
}
