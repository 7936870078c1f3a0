import type { RedisClient as Redis } from './redis';
import { ownKey } from './redis';
import { sha256Hex } from './secrets';

const WINDOW_SECONDS = 24 * 3600;

export type IdempotencyResult = { kind: 'new' } | { kind: 'replay'; emailId: string } | { kind: 'conflict' };

/**
 * `Idempotency-Key` handling for `POST /v1/emails`, kept in Redis for 24 hours: the same key
 * with the same body answers the first email's id; with another body it is a conflict.
 */
export interface IdempotencyStore {
  reserve(workspaceId: string, key: string, body: unknown, emailId: string): Promise<IdempotencyResult>;
  /** Forgets a reservation whose enqueue failed, so the client can retry with the same key. */
  release(workspaceId: string, key: string, emailId: string): Promise<void>;
}

/** JSON with sorted object keys, so equal bodies hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function createIdempotencyStore(redis: Redis, prefix: string): IdempotencyStore {
  const keyFor = (workspaceId: string, key: string) => ownKey(prefix, 'idem', workspaceId, sha256Hex(key));
  return {
    async reserve(workspaceId, key, body, emailId) {
      const bodyHash = sha256Hex(canonicalJson(body));
      const k = keyFor(workspaceId, key);
      const set = await redis.set(k, `${bodyHash}:${emailId}`, 'EX', WINDOW_SECONDS, 'NX');
      if (set === 'OK') return { kind: 'new' };
      const existing = await redis.get(k);
      if (!existing) return { kind: 'conflict' }; // expired between the two calls: let the client retry
      const [hash, firstId] = existing.split(':');
      return hash === bodyHash && firstId ? { kind: 'replay', emailId: firstId } : { kind: 'conflict' };
    },
    async release(workspaceId, key, emailId) {
      const k = keyFor(workspaceId, key);
      const existing = await redis.get(k);
      if (existing?.endsWith(`:${emailId}`)) await redis.del(k);
    },
  };
}
