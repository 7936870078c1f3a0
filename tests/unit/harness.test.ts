/**
 * The dev/test server harness (infra/dev): real redis-server and FerretDB processes.
 */
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { existsSync } from 'node:fs';
import { defaultFerretdbHandler, psql, startFerretdb, type RunningFerretdb } from '../../infra/dev/ferretdb';
import { ensureFerretdbBinary } from '../../infra/dev/ferretdb-build';
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

  it('ensureFerretdbBinary is cached and safe to call concurrently', async () => {
    const [a, b] = await Promise.all([ensureFerretdbBinary(), ensureFerretdbBinary()]);
    expect(a).toBe(b);
    expect(a).toMatch(/\.mailroom\/bin\/ferretdb-[0-9a-f]{16}$/);
    expect(existsSync(a)).toBe(true);
  });

  it.each(['sqlite', 'postgresql'] as const)(
    'with the %s backend, inserts and finds, kill() takes it down, start() brings the same data back',
    async (handler) => {
      // Without a PostgreSQL server the default falls back to SQLite, which the other case covers.
      if (handler === 'postgresql' && defaultFerretdbHandler() !== 'postgresql') return expect(defaultFerretdbHandler()).toBe('sqlite');
      const db = await startFerretdb({ handler });
      started.push(db);
      expect(db.uri).toBe(`mongodb://127.0.0.1:${db.port}/`);
      expect(db.kind).toBe('ferretdb');

      const client = mongoClient(db.uri);
      clients.push(client);
      const coll = client.db('harness').collection<{ _id: string; n: number }>('docs');
      await coll.insertOne({ _id: 'a', n: 1 });
      expect(await coll.findOne({ _id: 'a' })).toEqual({ _id: 'a', n: 1 });

      await db.kill();
      expect(db.pid).toBeUndefined();
      await expect(coll.findOne({ _id: 'a' })).rejects.toThrow();
      const fresh = mongoClient(db.uri);
      await expect(fresh.connect()).rejects.toThrow();
      await fresh.close();

      await db.start();
      expect(db.pid).toBeDefined();
      // The same client reconnects by itself once the server is back.
      expect(await coll.findOne({ _id: 'a' })).toEqual({ _id: 'a', n: 1 });

      const dir = db.dataDir;
      await client.close();
      await db.stop();
      if (handler === 'sqlite') expect(existsSync(dir!)).toBe(false);
    },
  );

  it('on PostgreSQL, mirrors the leading key of each index and the log filters status and type with GIN indexes, no other key', async () => {
    if (defaultFerretdbHandler() !== 'postgresql') return expect(defaultFerretdbHandler()).toBe('sqlite');
    const name = `mailroom_mirrors_${process.pid}_${Date.now().toString(36)}`;
    const db = await startFerretdb({ handler: 'postgresql', postgresDatabase: name });
    const client = mongoClient(db.uri);
    try {
      const entries = client.db('harness').collection('entries');
      await entries.createIndex({ workspaceId: 1, status: 1, sentAt: -1 }, { name: 'workspace_status_sentAt' });
      await entries.createIndex({ wsDay: 1, sentAt: -1, _id: -1 }, { name: 'wsDay_sentAt' });
      await entries.createIndex({ recipient: 1, workspaceId: 1, type: 1 }, { name: 'recipient_workspace_type' });
      await entries.createIndex({ "it's": 1 }, { name: 'quoted' });
      const defs = psql(`SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'entries%' AND indexdef LIKE '% USING gin %'`, 5000, name);
      const mirrored = [...defs.matchAll(/\(_jsonb -> '((?:[^']|'')+)'::text\)\) jsonb_path_ops/g)].map((m) => m[1]).sort();
      // _id: the collection's own unique index. Not sentAt, not _id as a sort key, not a second workspaceId.
      expect(mirrored).toEqual(['_id', "it''s", 'recipient', 'status', 'type', 'workspaceId', 'wsDay']);
    } finally {
      await client.close();
      await db.stop();
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });

  it('runs two instances at once, each with its own data', async () => {
    const [one, two] = await Promise.all([startFerretdb(), startFerretdb()]);
    started.push(one, two);
    expect(one.port).not.toBe(two.port);
    if (one.dataDir !== undefined) expect(one.dataDir).not.toBe(two.dataDir);

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
