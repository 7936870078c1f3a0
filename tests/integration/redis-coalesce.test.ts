import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { batchedGet, coalesceWrites, createRedis, type RedisClient } from '@mailroom/shared';
import type { Redis } from 'ioredis';
import { testServers } from '../support/system';

/** Counts the system-call writes (write or writev) a connection's socket makes from now on. */
function countWrites(redis: RedisClient): { count: () => number } {
  const socket = (redis as Redis).stream as Socket & { _writeGeneric: (...args: unknown[]) => unknown };
  let n = 0;
  const original = socket._writeGeneric.bind(socket);
  socket._writeGeneric = (...args: unknown[]) => {
    n++;
    return original(...args);
  };
  return { count: () => n };
}

describe('coalesceWrites: the commands of one event-loop turn leave in one socket write (real Redis)', () => {
  const ns = `coalesce-${randomUUID()}`;
  let plain: RedisClient;
  let coalesced: RedisClient;

  beforeAll(async () => {
    const { redisUrl } = testServers();
    plain = createRedis(redisUrl, 'client');
    coalesced = coalesceWrites(createRedis(redisUrl, 'client'));
    await Promise.all([plain.ping(), coalesced.ping()]);
  });
  afterAll(async () => {
    const keys = await plain.keys(`${ns}:*`);
    if (keys.length) await plain.del(...keys);
    plain.disconnect();
    coalesced.disconnect();
  });

  /** `n` commands issued one per microtask, as the callbacks of concurrent jobs issue them within a turn. */
  const issueApart = (redis: RedisClient, n: number, command: (i: number) => Promise<unknown>) =>
    Promise.all(Array.from({ length: n }, (_, i) => Promise.resolve().then(() => command(i))));

  it('joins 50 commands of one turn into one write, where a plain connection makes 50; every reply goes to its own command', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => plain.set(`${ns}:k${i}`, `v${i}`)));

    const p = countWrites(plain);
    const plainValues = await issueApart(plain, 50, (i) => plain.get(`${ns}:k${i}`));
    const c = countWrites(coalesced);
    const values = await issueApart(coalesced, 50, (i) => coalesced.get(`${ns}:k${i}`));

    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
    expect(plainValues).toEqual(values);
    expect(p.count()).toBe(50);
    expect(c.count()).toBe(1);
  });

  it('an error answers only its own command; the others of the same write succeed', async () => {
    await plain.set(`${ns}:str`, 'x');
    const results = await Promise.allSettled([
      coalesced.incr(`${ns}:counter`),
      coalesced.lpush(`${ns}:str`, 'wrong type'),
      coalesced.get(`${ns}:str`),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(results[1]!.status).toBe('rejected');
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(results[2]).toEqual({ status: 'fulfilled', value: 'x' });
  });

  it('commands issued in later turns (after awaits, timers, immediates) are all written and answered', async () => {
    for (let i = 0; i < 20; i++) {
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
      if (i % 3 === 1) await new Promise((r) => setTimeout(r, 1));
      expect(await coalesced.incr(`${ns}:turns`)).toBe(i + 1);
    }
    // Issued from inside a check-phase callback, where the flush of that turn already ran.
    const fromImmediate = await new Promise<string | null>((resolve, reject) =>
      setImmediate(() => coalesced.get(`${ns}:turns`).then(resolve, reject)),
    );
    expect(fromImmediate).toBe('20');
  });

  it('keeps working across a reconnect: a command corked when the socket died is sent again, later ones go out on the new socket', async () => {
    const redis = coalesced as Redis;
    const before = redis.stream;
    const ready = new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    // Issued (and held in the corked socket for this turn), then the connection drops in the same turn.
    const pending = redis.set(`${ns}:reconnect`, 'during');
    before.destroy();
    await ready;
    // ioredis resends a command left unanswered by a closed connection.
    expect(await pending).toBe('OK');
    expect(redis.stream).not.toBe(before);
    expect(await plain.get(`${ns}:reconnect`)).toBe('during');

    const c = countWrites(coalesced);
    const values = await issueApart(coalesced, 10, (i) => coalesced.incr(`${ns}:after-reconnect-${i % 2}`));
    expect(values.sort()).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(c.count()).toBe(1);
  });
});

describe('batchedGet: the keys asked for in one tick are read by one MGET (real Redis)', () => {
  const ns = `{batched-${randomUUID()}}`;
  let redis: RedisClient;

  beforeAll(async () => {
    redis = createRedis(testServers().redisUrl, 'client');
    await redis.mset(`${ns}:a`, '1', `${ns}:b`, '2');
  });
  afterAll(async () => {
    await redis.del(`${ns}:a`, `${ns}:b`);
    redis.disconnect();
  });

  it('answers each key with its own value (null when unset) from one MGET, and the next tick with another', async () => {
    const mget = jest.spyOn(redis, 'mget');
    const get = batchedGet(redis);
    expect(batchedGet(redis)).toBe(get);
    const first = await Promise.all([get(`${ns}:a`), get(`${ns}:missing`), get(`${ns}:b`), get(`${ns}:a`)]);
    expect(first).toEqual(['1', null, '2', '1']);
    expect(mget).toHaveBeenCalledTimes(1);
    await redis.set(`${ns}:a`, '3');
    // A later tick reads again: nothing is kept between batches.
    expect(await get(`${ns}:a`)).toBe('3');
    expect(mget).toHaveBeenCalledTimes(2);
    mget.mockRestore();
  });

  it('a failed MGET fails every read of its batch, and the batcher goes on with the next', async () => {
    const get = batchedGet(redis);
    const mget = jest.spyOn(redis, 'mget').mockRejectedValueOnce(new Error('connection lost'));
    const failed = await Promise.allSettled([get(`${ns}:a`), get(`${ns}:b`)]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await get(`${ns}:b`)).toBe('2');
    mget.mockRestore();
  });
});
