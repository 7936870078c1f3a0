import { Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections. BullMQ wants workers on connections that retry forever
 * (`maxRetriesPerRequest: null`), while request paths (queue producers, idempotency) should
 * fail fast rather than hang an HTTP request.
 */
export function createRedis(url: string, role: 'worker' | 'client', extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    connectionName: `mailroom-${role}`,
    ...extra,
  });
}

/** Key of our own (non-BullMQ) data, under the queue prefix so one hash tag covers all keys. */
export function ownKey(prefix: string, ...parts: string[]): string {
  return [prefix, 'mr', ...parts].join(':');
}
