import type { RedisClient as Redis } from './redis';
import { batchedGet, ownKey } from './redis';
import type { SuppressionDoc, SuppressionRepository } from './suppression.repository';
import type { TrackingSettingsRepository } from './tracking-settings.repository';

/**
 * Per-workspace data the send path needs on every email (suppressions, the tracking switch) is
 * kept in process memory and checked against a version counter in Redis: one Redis GET per
 * send instead of a database read, and every change (any process) bumps the counter, so the
 * next send sees it: a database read per email would cost the send path more than the send.
 */
/** The Redis counter every change of a workspace's `what` increments (any process). */
export function workspaceVersionKey(
  prefix: string,
  what: 'settings' | 'suppressions' | 'tracking' | 'webhook-endpoints',
  workspaceId: string,
): string {
  return ownKey(prefix, `${what}-version`, workspaceId);
}

/**
 * Reads version counters ('0' when unset). A read of a key while another read of it is in flight
 * shares that read: under load the sends of one workspace ask Redis once a round trip instead of
 * once an email. A change is seen by the sends that start after it, give or take that round trip.
 */
export function createVersionReader(redis: Redis): (key: string) => Promise<string> {
  const inflight = new Map<string, Promise<string>>();
  const get = batchedGet(redis);
  return (key) => {
    let pending = inflight.get(key);
    if (!pending) {
      pending = get(key).then(
        (v) => {
          inflight.delete(key);
          return v ?? '0';
        },
        (err: unknown) => {
          inflight.delete(key);
          throw err;
        },
      );
      inflight.set(key, pending);
    }
    return pending;
  };
}

/** Values per workspace kept in memory while the workspace's version counter in Redis stays the same. */
export function createVersionedCache<T>(
  redis: Redis,
  versionKey: (workspaceId: string) => string,
  load: (workspaceId: string) => Promise<T>,
) {
  const cache = new Map<string, { version: string; value: T }>();
  const loading = new Map<string, Promise<T>>();
  const readVersion = createVersionReader(redis);
  return {
    async get(workspaceId: string): Promise<T> {
      const version = await readVersion(versionKey(workspaceId));
      const hit = cache.get(workspaceId);
      if (hit && hit.version === version) return hit.value;
      const key = `${workspaceId}@${version}`;
      let pending = loading.get(key);
      if (!pending) {
        pending = load(workspaceId)
          .then((value) => {
            cache.set(workspaceId, { version, value });
            return value;
          })
          .finally(() => loading.delete(key));
        loading.set(key, pending);
      }
      return pending;
    },
    bump: (workspaceId: string) => redis.incr(versionKey(workspaceId)),
  };
}

/** A suppression repository whose `find` is served from the versioned cache; add/remove bump it. */
export function createCachedSuppressionRepository(repo: SuppressionRepository, redis: Redis, prefix: string): SuppressionRepository {
  const cache = createVersionedCache(
    redis,
    (ws) => workspaceVersionKey(prefix, 'suppressions', ws),
    async (ws) => {
      const all = new Map<string, SuppressionDoc>();
      let after: string | undefined;
      for (;;) {
        const page = await repo.list(ws, { limit: 1000, ...(after ? { after } : {}) });
        for (const s of page) all.set(s.address, s);
        if (page.length < 1000) return all;
        after = page[page.length - 1]!._id;
      }
    },
  );
  return {
    ensureIndexes: () => repo.ensureIndexes(),
    list: (ws, opts) => repo.list(ws, opts),
    async find(ws, address) {
      return (await cache.get(ws)).get(address.trim().toLowerCase()) ?? null;
    },
    async add(s) {
      await repo.add(s);
      await cache.bump(s.workspaceId);
    },
    async remove(ws, address) {
      const removed = await repo.remove(ws, address);
      await cache.bump(ws);
      return removed;
    },
  };
}

/** The tracking switch served from the versioned cache; `setEnabled` bumps it. */
export function createCachedTrackingSettings(repo: TrackingSettingsRepository, redis: Redis, prefix: string): TrackingSettingsRepository {
  const cache = createVersionedCache(
    redis,
    (ws) => workspaceVersionKey(prefix, 'tracking', ws),
    (ws) => repo.isEnabled(ws),
  );
  return {
    isEnabled: (ws) => cache.get(ws),
    async setEnabled(ws, enabled) {
      await repo.setEnabled(ws, enabled);
      await cache.bump(ws);
    },
  };
}
