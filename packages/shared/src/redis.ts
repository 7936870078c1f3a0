import type { Socket } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** A connection to one Redis server or to a Redis Cluster; both speak every command we use. */
export type RedisClient = Redis | Cluster;

/**
 * Redis connections. `REDIS_URL` is one server (`redis://host:6379`) or the seed nodes of a
 * Redis Cluster separated by commas (`redis://h1:7000,redis://h2:7001,redis://h3:7002`).
 * BullMQ wants workers on connections that retry forever (`maxRetriesPerRequest: null`), while
 * request paths (queue producers, idempotency) should fail fast rather than hang a request.
 */
export function createRedis(url: string, role: 'worker' | 'client'): RedisClient {
  const options: RedisOptions = {
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    connectionName: `mailroom-${role}`,
  };
  if (!url.includes(',')) return new Redis(url, options);
  const seeds = url.split(',').map((u) => new URL(u.includes('://') ? u.trim() : `redis://${u.trim()}`));
  const first = seeds[0]!;
  return new Cluster(
    seeds.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
    {
      redisOptions: {
        ...options,
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    },
  );
}

/**
 * Makes `client` write the commands issued during one turn of the event loop to its socket
 * together: the socket is corked at the first command and uncorked in the loop's check phase
 * (`setImmediate`), so the commands of every job or request whose I/O arrived in that turn go
 * out in one `writev` instead of one `write` each. A socket write on loopback costs far more
 * than building a command (the worker's and the API's profiles: a third to a half of the
 * Redis client's time was in `write`), and the delay is only until the same turn ends.
 *
 * ioredis auto-pipelining coalesces only what is issued in the same tick (`process.nextTick`);
 * this also joins commands that I/O callbacks of the same poll phase issue one after another.
 * A Cluster coalesces per node. Replies, errors and reconnects are ioredis's as before: a
 * command that is not written at once (not ready, offline queue) is untouched.
 */
export function coalesceWrites<T extends RedisClient>(client: T): T {
  if (client instanceof Cluster) {
    client.on('+node', (node: Redis) => coalesceWrites(node));
    return client;
  }
  const redis = client as Redis;
  let corked: Socket | null = null;
  const uncork = () => {
    const socket = corked;
    corked = null;
    socket?.uncork();
  };
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    const socket = redis.stream as Socket | undefined;
    if (!corked && redis.status === 'ready' && socket?.writable) {
      socket.cork();
      corked = socket;
      setImmediate(uncork);
    }
    return send(command, stream);
  };
  return client;
}

const getBatchers = new WeakMap<RedisClient, (key: string) => Promise<string | null>>();

/**
 * GET through one MGET a tick: the keys asked for in the same tick (the look-ups a send starts
 * together, and those of the other sends starting with it) are read by one command, one reply.
 * One batcher per connection, shared by every caller. Our own keys all sit under the queue
 * prefix, whose hash tag puts them in one slot, so a Redis Cluster takes the MGET too.
 */
export function batchedGet(redis: RedisClient): (key: string) => Promise<string | null> {
  let get = getBatchers.get(redis);
  if (get) return get;
  let keys: string[] = [];
  let waiting: Array<{ resolve: (v: string | null) => void; reject: (err: unknown) => void }> = [];
  const flush = () => {
    const k = keys;
    const w = waiting;
    keys = [];
    waiting = [];
    redis.mget(...k).then(
      (values) => w.forEach((x, i) => x.resolve(values[i] ?? null)),
      (err: unknown) => w.forEach((x) => x.reject(err)),
    );
  };
  get = (key) =>
    new Promise((resolve, reject) => {
      if (keys.length === 0) process.nextTick(flush);
      keys.push(key);
      waiting.push({ resolve, reject });
    });
  getBatchers.set(redis, get);
  return get;
}

/** Key of our own (non-BullMQ) data, under the queue prefix so one hash tag covers all keys. */
export function ownKey(prefix: string, ...parts: string[]): string {
  return [prefix, 'mr', ...parts].join(':');
}

/**
 * A Lua script as a command of `redis` (ioredis `defineCommand`): sent in full once per
 * connection, then run by its SHA1 (EVALSHA, with the full text again after a NOSCRIPT, as after a
 * Redis restart). A plain EVAL sends the whole script with every call: on the per-request and
 * per-email paths that was a few percent of the process's CPU in socket writes alone.
 */
export function defineScript(
  redis: RedisClient,
  name: string,
  lua: string,
  numberOfKeys: number,
): (...args: Array<string | number>) => Promise<unknown> {
  const commands = redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>;
  if (typeof commands[name] !== 'function') redis.defineCommand(name, { lua, numberOfKeys });
  return (...args) => commands[name]!(...args);
}
