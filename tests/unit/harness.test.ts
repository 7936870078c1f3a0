/**
 * The dev/test server harness (infra/dev): real redis-server and FerretDB processes.
 */
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { existsSync } from 'node:fs';
import { startFerretdb, type RunningFerretdb } from '../../infra/dev/ferretdb';
import { startRedis, type RunningRedis } from '../../infra/dev/redis';

jest.setTimeout(30_000);

/** A client that gives up quickly, so "server is down" shows as a fast failure. */
function mongoClient(uri: string): MongoClient {
  return new MongoClient(uri, { directConnection: true, serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
}

function redisClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
}

describe('global setup', () => {
  it('exports TEST_REDIS_URL and TEST_MONGODB_URI of working servers', async () => {
    const redisUrl = process.env.TEST_REDIS_URL;
    const mongoUri = process.env.TEST_MONGODB_URI;
    expect(redisUrl).toMatch(/^redis:\/\//);
    expect(mongoUri).toMatch(/^mongodb:\/\/[^/]+\/$/);

    const redis = redisClient(redisUrl!);
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    } finally {
      redis.disconnect();
    }
    const mongo = mongoClient(mongoUri!);
    try {
      expect(await mongo.db('admin').command({ ping: 1 })).toMatchObject({ ok: 1 });
    } finally {
      await mongo.close();
    }
  });
});

describe('startRedis', () => {
  let redis: RunningRedis | undefined;
  afterEach(async () => {
    await redis?.stop();
    redis = undefined;
  });

  it('starts a working server and restart() with persist keeps data', async () => {
    redis = await startRedis({ persist: true });
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    const firstPid = redis.pid;

    let client = redisClient(redis.url);
    await client.connect();
    await client.set('harness:key', 'kept');
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    client.disconnect();

    await redis.restart();
    expect(redis.pid).toBeDefined();
    expect(redis.pid).not.toBe(firstPid);

    client = redisClient(redis.url);
    try {
      await client.connect();
      expect(await client.get('harness:key')).toBe('kept');
    } finally {
      client.disconnect();
    }
    const dir = redis.dataDir!;
    await redis.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it('without persist starts empty after restart, on the same port', async () => {
    redis = await startRedis();
    const port = redis.port;
    let client = redisClient(redis.url);
    await client.connect();
    await client.set('harness:gone', '1');
    client.disconnect();

    await redis.restart();
    expect(redis.port).toBe(port);
    client = redisClient(redis.url);
    try {
      await client.connect();
      expect(await client.get('harness:gone')).toBeNull();
    } finally {
      client.disconnect();
    }
  });
});

describe('startFerretdb', () => {
  const started: RunningFerretdb[] = [];
  const clients: MongoClient[] = [];
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(started.map((s) => s.stop()));
  });

  it('runs FerretDB 2 on its own PostgreSQL cluster with DocumentDB: inserts and finds, kill() takes both down, start() brings the same data back', async () => {
    const db = await startFerretdb();
    started.push(db);
    expect(db.uri).toBe(`mongodb://127.0.0.1:${db.port}/`);
    expect(db.kind).toBe('ferretdb');
    // A private cluster, never the system one on 5432.
    expect(db.pgPort).not.toBe(5432);
    expect(db.psql('SHOW port').trim()).toBe(String(db.pgPort));
    expect(db.psql("SELECT extversion FROM pg_extension WHERE extname = 'documentdb'").trim()).toMatch(/^0\.106/);

    const client = mongoClient(db.uri);
    clients.push(client);
    const buildInfo = await client.db('admin').command({ buildInfo: 1 });
    expect(buildInfo.ferretdb?.version).toBe('v2.5.0');
    const coll = client.db('harness').collection<{ _id: string; n: number }>('docs');
    await coll.insertOne({ _id: 'a', n: 1 });
    expect(await coll.findOne({ _id: 'a' })).toEqual({ _id: 'a', n: 1 });

    await db.kill();
    expect(db.pid).toBeUndefined();
    expect(db.pgPid).toBeUndefined();
    await expect(coll.findOne({ _id: 'a' })).rejects.toThrow();
    const fresh = mongoClient(db.uri);
    await expect(fresh.connect()).rejects.toThrow();
    await fresh.close();

    await db.start();
    expect(db.pid).toBeDefined();
    // The same client reconnects by itself once the server is back; the write survived the crash.
    expect(await coll.findOne({ _id: 'a' })).toEqual({ _id: 'a', n: 1 });

    const dir = db.dataDir;
    await client.close();
    await db.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it('does what the log needs of MongoDB: atomic conditional updates, unordered inserts past duplicates, partial indexes, $dateToString', async () => {
    const db = await startFerretdb();
    started.push(db);
    const client = mongoClient(db.uri);
    clients.push(client);
    const coll = client.db('harness').collection<{ _id: string; n?: number; p?: string | null; at?: Date }>('engine');
    // An unordered insert goes on past duplicate keys and reports each of them.
    await coll.insertOne({ _id: 'b' });
    const err = await coll
      .insertMany([{ _id: 'a' }, { _id: 'b' }, { _id: 'c' }, { _id: 'b' }, { _id: 'd' }], { ordered: false })
      .catch((e: unknown) => e);
    expect((err as { writeErrors?: Array<{ index: number; code: number }> }).writeErrors?.map((e) => [e.index, e.code])).toEqual([
      [1, 11000],
      [3, 11000],
    ]);
    expect((await coll.find({}).toArray()).map((d) => d._id).sort()).toEqual(['a', 'b', 'c', 'd']);
    // Conditional updates from many clients at once apply exactly once each.
    await coll.updateOne({ _id: 'a' }, { $set: { n: 0 } });
    const won = await Promise.all(Array.from({ length: 20 }, () => coll.updateOne({ _id: 'a', n: 0 }, { $inc: { n: 1 } })));
    expect(won.filter((r) => r.modifiedCount === 1)).toHaveLength(1);
    expect((await coll.findOne({ _id: 'a' }))?.n).toBe(1);
    // A partial index is accepted and used.
    await coll.createIndex({ p: 1 }, { name: 'p', partialFilterExpression: { p: { $type: 'string' } } });
    expect((await coll.listIndexes().toArray()).find((i) => i.name === 'p')?.partialFilterExpression).toEqual({ p: { $type: 'string' } });
    await coll.updateOne({ _id: 'c' }, { $set: { at: new Date('2026-11-27T23:30:00Z') } });
    const days = await coll
      .aggregate([
        { $match: { at: { $type: 'date' } } },
        { $group: { _id: { $dateToString: { date: '$at', format: '%Y-%m-%d', timezone: 'UTC' } }, n: { $sum: 1 } } },
      ])
      .toArray();
    expect(days).toEqual([{ _id: '2026-11-27', n: 1 }]);
  });

  it('runs two instances at once, each with its own data', async () => {
    const [one, two] = await Promise.all([startFerretdb(), startFerretdb()]);
    started.push(one, two);
    expect(one.port).not.toBe(two.port);
    expect(one.pgPort).not.toBe(two.pgPort);
    expect(one.dataDir).not.toBe(two.dataDir);

    const c1 = mongoClient(one.uri);
    const c2 = mongoClient(two.uri);
    clients.push(c1, c2);
    await c1.db('harness').collection('docs').insertOne({ where: 'one' });
    await c2.db('harness').collection('docs').insertOne({ where: 'two' });
    const seen1 = await c1
      .db('harness')
      .collection('docs')
      .find({}, { projection: { _id: 0 } })
      .toArray();
    const seen2 = await c2
      .db('harness')
      .collection('docs')
      .find({}, { projection: { _id: 0 } })
      .toArray();
    expect(seen1).toEqual([{ where: 'one' }]);
    expect(seen2).toEqual([{ where: 'two' }]);
  });
});
