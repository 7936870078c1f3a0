import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { MongoClient } from 'mongodb';
import { createLogger, createRedis, loadConfig, type Config, type RedisClient } from '@mailroom/shared';
import { startApiServer, type ApiServer } from '../../apps/api/src/api-server';
import type { SnsHttp } from '../../apps/api/src/webhooks/ses';
import { startWorkerApp, type WorkerApp } from '../../apps/worker/src/worker-app';

type DestinationStream = NonNullable<Parameters<typeof createLogger>[0]['destination']>;

/** Servers started once per run by tests/global-setup.ts. */
export function testServers(): { redisUrl: string; mongoUri: string } {
  const redisUrl = process.env.TEST_REDIS_URL;
  const mongoUri = process.env.TEST_MONGODB_URI;
  if (!redisUrl || !mongoUri) throw new Error('TEST_REDIS_URL / TEST_MONGODB_URI are not set: run the tests through jest (global setup)');
  return { redisUrl, mongoUri };
}

/** `mongodb://host:port/` + a database name. */
export function withDb(serverUri: string, db: string): string {
  return serverUri.replace(/\/?$/, '/') + db;
}

export const OPERATOR_TOKEN = 'test-operator-token-0123456789';

export interface TestSystem {
  config: Config;
  api: ApiServer;
  worker: WorkerApp | null;
  /** Each test system has its own databases and queue prefix. */
  namespace: string;
  request(
    method: string,
    path: string,
    opts?: { key?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  createWorkspace(name?: string): Promise<{ id: string; keys: { send: string; admin: string } }>;
  mongo: MongoClient;
  redis: RedisClient;
  startWorker(): Promise<WorkerApp>;
  close(): Promise<void>;
}

/**
 * Starts the API (and by default a worker) in this process against the run's real Redis and
 * MongoDB-compatible server, in a namespace of its own: fresh databases, a fresh queue prefix.
 */
export async function startTestSystem(opts: {
  env: Record<string, string>;
  worker?: boolean;
  snsHttp?: SnsHttp;
  /** Where the API's and worker's log lines go (a test that reads them); stdout by default. */
  logDestination?: DestinationStream;
}): Promise<TestSystem> {
  const { redisUrl, mongoUri } = testServers();
  const namespace = `t${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: redisUrl,
    MONGODB_URI: withDb(mongoUri, `${namespace}_main`),
    LOGS_MONGODB_DB: `${namespace}_logs`,
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: '1500',
    OPERATOR_TOKEN,
    SECRETS_KEY: 'test-secrets-key-0123456789abcdef',
    QUEUE_PREFIX: `{${namespace}}`,
    MANAGED_FROM: 'Mailroom <notifications@mailroom.test>',
    SEND_BACKOFF_MS: '20',
    SMTP_CONNECTION_TIMEOUT_MS: '1500',
    SMTP_GREETING_TIMEOUT_MS: '1500',
    SMTP_SOCKET_TIMEOUT_MS: '5000',
    OUTBOX_FLUSH_INTERVAL_MS: '200',
    // Any free port: test systems run side by side (the processes' defaults are 9464 and 9465).
    METRICS_PORT: '0',
    ...opts.env,
  });
  const log = createLogger({
    level: config.logLevel,
    name: namespace,
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  });
  const api = await startApiServer(config, log, opts.snsHttp ? { snsHttp: opts.snsHttp } : {});
  const workers: WorkerApp[] = [];
  const startWorker = async () => {
    const w = await startWorkerApp(config, log);
    workers.push(w);
    return w;
  };
  const worker = opts.worker === false ? null : await startWorker();
  const mongo = await MongoClient.connect(config.mongo.uri, { serverSelectionTimeoutMS: 5000 });
  const redis = createRedis(config.redisUrl, 'client');

  const request: TestSystem['request'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    let body: string | undefined;
    if (o.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    }
    const res = await fetch(api.url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };

  return {
    config,
    api,
    worker,
    namespace,
    request,
    mongo,
    redis,
    startWorker,
    async createWorkspace(name = 'Acme') {
      const r = await request('POST', '/v1/workspaces', { key: OPERATOR_TOKEN, body: { name } });
      if (r.status !== 201) throw new Error(`workspace creation failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async close() {
      for (const w of workers) await w.close();
      await api.close();
      await mongo
        .db(config.mongo.db)
        .dropDatabase()
        .catch(() => undefined);
      await mongo
        .db(config.logsMongo.db)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
      // Only this namespace's keys: other test files share the server. (A Redis Cluster is the
      // test's own and goes away whole.)
      if (!(redis instanceof Cluster)) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `{${namespace}}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      }
      redis.disconnect();
    },
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
