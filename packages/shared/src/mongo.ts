import { MongoClient, type Db } from 'mongodb';
import type { Config } from './config';

export interface Databases {
  /** Workspaces, keys and email settings. */
  main: Db;
  /** Email log entries, their content and (later) the activity log: large scans stay here. */
  logs: Db;
  ping(): Promise<{ main: boolean; logs: boolean }>;
  close(): Promise<void>;
}

/**
 * Connects to the main and the logs database (one client when both live on the same server).
 * Written for MongoDB 7 (no transactions, no change streams: the dev/test engine, FerretDB 2 on
 * DocumentDB, has neither; docs/database.md).
 */
export async function connectDatabases(config: Pick<Config, 'mongo' | 'logsMongo'>, appName: string): Promise<Databases> {
  const options = (timeout: number) => ({
    appName,
    serverSelectionTimeoutMS: timeout,
    // Fail a write quickly when the server is gone, so the outcome goes to the outbox.
    connectTimeoutMS: Math.min(timeout, 10_000),
    maxPoolSize: 50,
  });
  const mainClient = new MongoClient(config.mongo.uri, options(config.mongo.serverSelectionTimeoutMs));
  const shared = config.logsMongo.uri === config.mongo.uri;
  const logsClient = shared ? mainClient : new MongoClient(config.logsMongo.uri, options(config.logsMongo.serverSelectionTimeoutMs));
  await mainClient.connect();
  if (!shared) await logsClient.connect();
  const main = mainClient.db(config.mongo.db);
  const logs = logsClient.db(config.logsMongo.db);
  const pingOne = async (db: Db) => {
    try {
      await db.command({ ping: 1 });
      return true;
    } catch {
      return false;
    }
  };
  return {
    main,
    logs,
    ping: async () => {
      const [m, l] = await Promise.all([pingOne(main), pingOne(logs)]);
      return { main: m, logs: l };
    },
    close: async () => {
      await mainClient.close();
      if (!shared) await logsClient.close();
    },
  };
}

/** True for MongoDB "duplicate key" errors (E11000), which several writes treat as "already there". */
export function isDuplicateKeyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}
