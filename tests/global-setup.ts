/**
 * Jest global setup (runs once, in the jest parent process): starts one Redis and one
 * MongoDB-compatible server for the whole run, unless TEST_REDIS_URL / TEST_MONGODB_URI are
 * already set, and exports their addresses through process.env so test workers inherit them.
 * Handles are kept on globalThis for tests/global-teardown.ts.
 */
import { externalMongo, startMongo, type RunningMongo } from '../infra/dev/mongo';
import { startRedis, type RunningRedis } from '../infra/dev/redis';

export interface MailroomTestServers {
  redis?: RunningRedis;
  mongo?: RunningMongo;
}

declare global {
  // eslint-disable-next-line no-var
  var __MAILROOM_TEST_SERVERS__: MailroomTestServers | undefined;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - t0 };
}

export default async function globalSetup(): Promise<void> {
  const servers: MailroomTestServers = {};
  globalThis.__MAILROOM_TEST_SERVERS__ = servers;
  const t0 = Date.now();

  const redisUrl = process.env.TEST_REDIS_URL;
  const mongoUri = process.env.TEST_MONGODB_URI;

  const [redis, mongo] = await Promise.allSettled([
    redisUrl ? Promise.resolve(undefined) : timed(() => startRedis()),
    mongoUri ? Promise.resolve(undefined) : timed(() => startMongo()),
  ]);
  if (redis.status === 'fulfilled' && redis.value) servers.redis = redis.value.value;
  if (mongo.status === 'fulfilled' && mongo.value) servers.mongo = mongo.value.value;
  if (redis.status === 'rejected' || mongo.status === 'rejected') {
    await Promise.allSettled([servers.redis?.stop(), servers.mongo?.stop()]);
    globalThis.__MAILROOM_TEST_SERVERS__ = undefined;
    throw redis.status === 'rejected' ? redis.reason : (mongo as PromiseRejectedResult).reason;
  }

  const parts: string[] = [];
  if (redis.value) {
    process.env.TEST_REDIS_URL = redis.value.value.url;
    parts.push(`redis :${redis.value.value.port} (${redis.value.ms} ms)`);
  } else {
    parts.push(`redis external ${redisUrl}`);
  }
  if (mongo.value) {
    const m = mongo.value.value;
    process.env.TEST_MONGODB_URI = m.uri;
    parts.push(`mongo ${m.kind} :${m.port ?? '?'} (${mongo.value.ms} ms)`);
  } else {
    servers.mongo = externalMongo(mongoUri ?? '');
    parts.push(`mongo external ${mongoUri}`);
  }
  process.stdout.write(`\n[mailroom] test servers: ${parts.join(', ')}; ready in ${Date.now() - t0} ms\n`);
}
