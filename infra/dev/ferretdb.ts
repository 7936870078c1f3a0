/**
 * FerretDB (MongoDB wire protocol on SQLite or PostgreSQL) for dev and tests on machines where
 * `mongod` cannot be had. The binary is built from our small main module in infra/ferretdb/
 * (see its main.go for why) and cached under .mailroom/bin/ (ferretdb-build.ts).
 *
 *   const db = await startFerretdb();   // SQLite in a fresh temp dir, free port
 *   db.uri  // mongodb://127.0.0.1:PORT/
 *   await db.kill(); await db.start();  // down for a while, back with the same data
 *   await db.stop();                    // gone, temp dir removed
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureFerretdbBinary, FERRETDB_SOURCE_DIR } from './ferretdb-build';
import { REPO_ROOT, ServerProcess, canConnect, startOnPort, makeTempDir, removeTempDir, sleep } from './process';
import type { RunningMongo } from './types';
import { keepVacuumedIfNeeded, type VacuumKeeper } from './postgres-vacuum';

export interface StartFerretdbOptions {
  /** Port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** SQLite directory (created if missing, kept by `stop()`); a fresh temp dir when omitted. */
  dataDir?: string;
  handler?: 'sqlite' | 'postgresql';
  /** For handler 'postgresql', e.g. postgres://127.0.0.1:5432/ferretdb (db must exist). */
  postgresqlUrl?: string;
  /**
   * For handler 'postgresql' without a URL: the database to create (if missing) and keep on the
   * local server. Without it a scratch database is created and dropped by `stop()`.
   */
  postgresDatabase?: string;
  /** FerretDB log level on stderr (default 'error'; output is kept for error messages). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** How long to wait for the server to answer (default 30 s). */
  timeoutMs?: number;
}

export interface RunningFerretdb extends RunningMongo {
  kind: 'ferretdb';
  port: number;
  /** SQLite directory (undefined for the PostgreSQL handler). */
  readonly dataDir: string | undefined;
  /** PID of the current ferretdb process (undefined while killed). */
  readonly pid: number | undefined;
  /**
   * Stops the server, keeping its data. Default SIGKILL: immediate, like a crash (SQLite
   * commits survive it). SIGTERM is graceful but waits up to 3 s for connected clients to leave.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Resolves once a mongodb `ping` succeeds against the server, rejects with the last error. */
async function waitForPing(uri: string, sp: ServerProcess, deadline: number): Promise<void> {
  const { MongoClient } = await import('mongodb');
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (sp.hasExited) break;
    const client = new MongoClient(uri, {
      directConnection: true,
      serverSelectionTimeoutMS: 2000,
      connectTimeoutMS: 2000,
      maxPoolSize: 1,
    });
    try {
      await client.connect();
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (err) {
      lastErr = err;
    } finally {
      await client.close().catch(() => {});
    }
    await sleep(100);
  }
  const why = sp.hasExited ? sp.describeExit() : `last error: ${String(lastErr)}`;
  throw new Error(`FerretDB at ${uri} did not answer ping (${why})\n${sp.recentOutput()}`);
}

/** Where FerretDB's PostgreSQL backend keeps its databases (no database name). */
function postgresBase(): string {
  return (process.env.MAILROOM_FERRETDB_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
}

/** One SQL command through `psql` on FerretDB's PostgreSQL server; its output, tuples only. */
export function psql(sql: string, timeoutMs = 5000, database = 'postgres'): string {
  return execFileSync('psql', [`${postgresBase()}/${database}`, '-v', 'ON_ERROR_STOP=1', '-qtAc', sql], {
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
}

/**
 * Makes FerretDB's pushed-down equality filters use indexes (infra/ferretdb/postgresql-tuning.sql
 * says how and why). Idempotent; needs a role that may create event triggers (a superuser).
 */
function tunePostgresDatabase(database: string): void {
  psql(readFileSync(path.join(FERRETDB_SOURCE_DIR, 'postgresql-tuning.sql'), 'utf8'), 15_000, database);
}

let postgresReachable: boolean | undefined;

/**
 * The backend to use when none is asked for: MAILROOM_FERRETDB_HANDLER, else PostgreSQL when a
 * server answers at MAILROOM_FERRETDB_POSTGRES (default the local one), else SQLite. PostgreSQL
 * is preferred: FerretDB's SQLite backend serializes writers and answers SQLITE_BUSY under the
 * concurrent writes a worker makes, and it cannot push any filter but `_id` down.
 */
export function defaultFerretdbHandler(): 'sqlite' | 'postgresql' {
  const forced = process.env.MAILROOM_FERRETDB_HANDLER;
  if (forced === 'sqlite' || forced === 'postgresql') return forced;
  if (postgresReachable === undefined) {
    try {
      postgresReachable = psql('SELECT 1', 3000).trim() === '1';
    } catch {
      postgresReachable = false;
    }
  }
  return postgresReachable ? 'postgresql' : 'sqlite';
}

export async function startFerretdb(opts: StartFerretdbOptions = {}): Promise<RunningFerretdb> {
  const handler = opts.handler ?? defaultFerretdbHandler();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // PostgreSQL without a URL: a database of our own on the local server (a fixed name persists).
  let ownPgDatabase: string | undefined;
  let ourPgUrl: string | undefined;
  if (handler === 'postgresql' && !opts.postgresqlUrl) {
    const name = opts.postgresDatabase ?? `mailroom_${process.pid}_${Date.now().toString(36)}`;
    if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`startFerretdb: bad PostgreSQL database name ${name}`);
    if (psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`).trim() !== '1')
      psql(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
    tunePostgresDatabase(name);
    if (!opts.postgresDatabase) ownPgDatabase = name;
    // Loopback to our own server: no TLS between FerretDB and PostgreSQL (it cost ~10% of the CPU).
    opts = { ...opts, postgresqlUrl: `${postgresBase()}/${name}?sslmode=disable` };
    ourPgUrl = `${postgresBase()}/${name}`;
  }
  const binary = await ensureFerretdbBinary();

  let ownDataDir: string | undefined;
  let dataDir: string | undefined;
  if (handler === 'sqlite') {
    if (opts.dataDir) {
      dataDir = path.resolve(opts.dataDir);
      mkdirSync(dataDir, { recursive: true });
    } else {
      ownDataDir = makeTempDir('mailroom-ferretdb-');
      dataDir = ownDataDir;
    }
  }

  let proc: ServerProcess | undefined;
  let port = opts.port ?? 0;
  let stopped = false;

  const launch = async (p: number): Promise<ServerProcess> => {
    const args = [`-listen-addr=127.0.0.1:${p}`, `-handler=${handler}`, `-log-level=${opts.logLevel ?? 'error'}`];
    if (handler === 'sqlite') args.push(`-sqlite-url=file:${dataDir}/`);
    else args.push(`-postgresql-url=${opts.postgresqlUrl}`);
    const sp = new ServerProcess(`ferretdb :${p}`, binary, args, {
      cwd: dataDir ?? REPO_ROOT,
      // FerretDB 1.x allocates a document tree per document read or written; with Go's default
      // GOGC=100 its garbage collector took about a fifth of its CPU under load. A dev/test server
      // can trade memory for that CPU (an explicit GOGC in the environment wins).
      env: { ...process.env, GOGC: process.env.GOGC ?? '400' },
    });
    const deadline = Date.now() + timeoutMs;
    try {
      // Printed after the listener is bound, so the port is ours (not someone else's).
      await sp.waitForLine('ferretdb listening on', timeoutMs);
      while (!(await canConnect(p))) {
        if (sp.hasExited || Date.now() > deadline) {
          throw new Error(`FerretDB on port ${p} does not accept connections (${sp.describeExit()})\n${sp.recentOutput()}`);
        }
        await sleep(50);
      }
      await waitForPing(`mongodb://127.0.0.1:${p}/`, sp, deadline);
      return sp;
    } catch (err) {
      await sp.stop('SIGKILL');
      throw err;
    }
  };

  const startOnce = async (): Promise<void> => {
    if (proc && !proc.hasExited) return;
    proc = await launch(port);
  };

  try {
    port = await startOnPort(opts.port, async (p) => {
      port = p;
      proc = undefined;
      await startOnce();
    });
  } catch (err) {
    if (ownDataDir) removeTempDir(ownDataDir);
    throw err;
  }
  // A server with autovacuum off would leave our database's dead rows and statistics alone.
  const vacuum: VacuumKeeper | null = ourPgUrl ? await keepVacuumedIfNeeded(ourPgUrl) : null;

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    await proc?.stop(signal, 10_000);
  };
  const start = async (): Promise<void> => {
    if (stopped) throw new Error('startFerretdb: server was stopped for good; start a new one');
    await startOnce();
  };

  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    kind: 'ferretdb',
    port,
    dataDir,
    get pid() {
      return proc && !proc.hasExited ? proc.pid : undefined;
    },
    kill,
    start,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      stopped = true;
      await kill();
      if (ownDataDir) removeTempDir(ownDataDir);
      await vacuum?.stop();
      if (ownPgDatabase) {
        try {
          psql(`DROP DATABASE IF EXISTS ${ownPgDatabase} WITH (FORCE)`);
        } catch {
          // best effort: a leftover scratch database is harmless
        }
      }
    },
  };
}
