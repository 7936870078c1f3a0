import type { Collection, Filter } from 'mongodb';

/**
 * How many documents match, counting no further than `cap`: ids only, in one reply (no server
 * cursor left open). Pages and retention ask it before a read or delete they want to keep small.
 */
export async function countUpTo<T extends { _id: string }>(
  col: Collection<T>,
  filter: Filter<T>,
  cap: number,
  hint?: string,
): Promise<number> {
  const ids = await col
    .find(filter, { projection: { _id: 1 }, singleBatch: true, ...(hint ? { hint } : {}) })
    .limit(cap)
    .batchSize(cap)
    .toArray();
  return ids.length;
}
