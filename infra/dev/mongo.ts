/**
 * A MongoDB-compatible server for dev and tests:
 *   (a) mongodb-memory-server (a real mongod) when a mongod binary can be had without waiting
 *       on the network: MONGOMS_SYSTEM_BINARY, a mongod already in its cache dir, a `mongod`
 *       on PATH, or MAILROOM_TRY_MONGOMS_DOWNLOAD=1 (machines that can download it);
 *   (b) otherwise FerretDB (see ferretdb.ts), which always works here.
 * MAILROOM_TEST_MONGO=ferretdb|mongodb-memory-server forces one (no fallback).
 */
import { findExecutable } from './process';
import { startFerretdb } from './ferretdb';
import type { MongoKind, RunningMongo } from './types';

export type { MongoKind, RunningMongo } from './types';

export type StartableMongoKind = Exclude<MongoKind, 'external'>;

export interface StartMongoOptions {
  /**
   * Which server to try first. 'mongodb-memory-server' still falls back to FerretDB when no
   * mongod can be had or it fails to start. Overridden by env MAILROOM_TEST_MONGO.
   */
  preferred?: StartableMongoKind;
  /** Port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
}

const KINDS: readonly StartableMongoKind[] = ['mongodb-memory-server', 'ferretdb'];

function forcedKind(): StartableMongoKind | undefined {
  const raw = process.env.MAILROOM_TEST_MONGO?.trim();
  if (!raw) return undefined;
  if ((KINDS as readonly string[]).includes(raw)) return raw as StartableMongoKind;
  throw new Error(`MAILROOM_TEST_MONGO=${raw}: expected one of ${KINDS.join(', ')}`);
}

interface MongodSource {
  /** Passed to mongodb-memory-server as binary.systemBinary (undefined: its own cache/download). */
  systemBinary?: string;
  why: string;
}

/**
 * How mongodb-memory-server could get a mongod without a (possibly hanging) download, or
 * undefined. Only looks at env vars and the file system, so it answers in milliseconds.
 */
export async function findMongodSource(opts: { allowDownload?: boolean } = {}): Promise<MongodSource | undefined> {
  if (process.env.MONGOMS_SYSTEM_BINARY) {
    return { why: `MONGOMS_SYSTEM_BINARY=${process.env.MONGOMS_SYSTEM_BINARY}` };
  }
  try {
    const { DryMongoBinary } = await import('mongodb-memory-server');
    const cached = await DryMongoBinary.locateBinary(DryMongoBinary.getEnsuredOptions());
    if (cached) return { why: `cached mongod ${cached}` };
  } catch {
    // unknown OS/arch for its download table, unreadable cache dir...: no cached binary
  }
  const onPath = findExecutable('mongod');
  if (onPath) return { systemBinary: onPath, why: `mongod on PATH (${onPath})` };
  if (opts.allowDownload ?? process.env.MAILROOM_TRY_MONGOMS_DOWNLOAD === '1') {
    return { why: 'MAILROOM_TRY_MONGOMS_DOWNLOAD=1 (may download mongod)' };
  }
  return undefined;
}

/** Starts mongod through mongodb-memory-server (WiredTiger in a temp dir, so kill/start keep data). */
export async function startMongoMemoryServer(opts: { port?: number; systemBinary?: string } = {}): Promise<RunningMongo> {
  const { MongoMemoryServer } = await import('mongodb-memory-server');
  const mms = await MongoMemoryServer.create({
    instance: {
      ip: '127.0.0.1',
      port: opts.port,
      storageEngine: 'wiredTiger',
      launchTimeout: 60_000,
    },
    binary: opts.systemBinary ? { systemBinary: opts.systemBinary } : undefined,
  });
  const uri = mms.getUri();
  let stopped = false;
  const kill = async (): Promise<void> => {
    if (mms.state === 'running') await mms.stop({ doCleanup: false, force: false });
  };
  const start = async (): Promise<void> => {
    if (stopped) throw new Error('startMongo: server was stopped for good; start a new one');
    if (mms.state !== 'running') await mms.start(true);
  };
  return {
    uri,
    kind: 'mongodb-memory-server',
    port: Number(new URL(uri).port),
    kill,
    start,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await mms.stop({ doCleanup: true, force: true });
    },
  };
}

/** Wraps a server someone else runs (e.g. TEST_MONGODB_URI): stop() is a no-op, kill/start throw. */
export function externalMongo(uri: string): RunningMongo {
  const unsupported = async (): Promise<void> => {
    throw new Error(`not supported for an external MongoDB (${uri})`);
  };
  let port: number | undefined;
  try {
    port = Number(new URL(uri).port) || 27017;
  } catch {
    port = undefined; // mongodb+srv or several hosts
  }
  return { uri, kind: 'external', port, stop: async () => {}, kill: unsupported, start: unsupported, restart: unsupported };
}

export async function startMongo(opts: StartMongoOptions = {}): Promise<RunningMongo> {
  const forced = forcedKind();
  if (forced === 'ferretdb') return startFerretdb({ port: opts.port });
  if (forced === 'mongodb-memory-server') {
    const source = await findMongodSource({ allowDownload: true });
    return startMongoMemoryServer({ port: opts.port, systemBinary: source?.systemBinary });
  }

  if (opts.preferred !== 'ferretdb') {
    const source = await findMongodSource();
    if (source) {
      try {
        return await startMongoMemoryServer({ port: opts.port, systemBinary: source.systemBinary });
      } catch (err) {
        process.stderr.write(`[mailroom] mongodb-memory-server (${source.why}) failed, using FerretDB instead: ${String(err)}\n`);
      }
    }
  }
  return startFerretdb({ port: opts.port });
}
