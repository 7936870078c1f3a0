/**
 * The dev/test document engine where `mongod` cannot be had: FerretDB v2 (MongoDB wire protocol)
 * in front of a private PostgreSQL 15 cluster with the DocumentDB extension, both built by
 * scripts/build-engine.sh. Never the system's PostgreSQL: each call runs its own cluster on a
 * free port (initdb into `dataDir`, or a temp dir removed by `stop()`).
 *
 *   const db = await startFerretdb();   // fresh cluster in a temp dir, free ports
 *   db.uri  // mongodb://127.0.0.1:PORT/
 *   await db.kill(); await db.start();  // down for a while (a crash of both), back with the same data
 *   await db.stop();                    // gone, temp dir removed
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, ServerProcess, canConnect, getFreePort, makeTempDir, removeTempDir, sleep } from './process';
import type { RunningMongo } from './types';

export interface StartFerretdbOptions {
  /** Port of the MongoDB wire protocol on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** The PostgreSQL cluster's directory (initdb'd when empty, kept by `stop()`); a temp dir when omitted. */
  dataDir?: string;
  /** FerretDB's log level on stderr (default 'error'; output is kept for error messages). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** How long to wait for each server to answer (default 60 s). */
  timeoutMs?: number;
}

export interface RunningFerretdb extends RunningMongo {
  kind: 'ferretdb';
  port: number;
  /** Port of the private PostgreSQL (127.0.0.1, user postgres, trust). */
  readonly pgPort: number;
  readonly dataDir: string;
  /** PIDs of the current FerretDB and postmaster (undefined while killed): benches count their CPU. */
  readonly pid: number | undefined;
  readonly pgPid: number | undefined;
  /** One SQL command through psql on the private cluster's `postgres` database; tuples only. */
  psql(sql: string, timeoutMs?: number): string;
  /**
   * Stops both servers as a crash would (FerretDB SIGKILL, PostgreSQL's immediate shutdown),
   * keeping the data; `start()` brings them back on the same ports.
   */
  kill(): Promise<void>;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const FERRETDB_BIN = path.join(REPO_ROOT, '.mailroom', 'bin', 'ferretdb2');

/**
 * Settings of the private cluster. The preload line and the `documentdb.*` switches are those
 * of DocumentDB's packaging/10-preload.sh; `cron.database_name` is where pg_cron runs
 * DocumentDB's background jobs (TTL removal, index builds).
 */
const SETTINGS: Record<string, string> = {
  listen_addresses: "'127.0.0.1'",
  // TCP only: a socket directory would have to be writable by the cluster's user.
  unix_socket_directories: "''",
  shared_preload_libraries: "'pg_cron,pg_documentdb_core,pg_documentdb'",
  'cron.database_name': "'postgres'",
  'documentdb.enableCompact': 'true',
  'documentdb.enableLetAndCollationForQueryMatch': 'true',
  'documentdb.enableNowSystemVariable': 'true',
  'documentdb.enableSortbyIdPushDownToPrimaryKey': 'true',
  'documentdb.enableSchemaValidation': 'true',
  'documentdb.enableBypassDocumentValidation': 'true',
  'documentdb.enableUserCrud': 'true',
  'documentdb.maxUserLimit': '100',
  // Compound indexes as ordered composite keys (one index term a document) instead of one RUM
  // term per path: inserts into the log's collection with its seven indexes went from ~750 to
  // ~4,800 documents/s (20,000 log entries, same cluster). Off by default in DocumentDB 0.106.
  'documentdb.defaultUseCompositeOpClass': 'on',
  max_connections: '300',
  shared_buffers: "'256MB'",
  logging_collector: 'off',
  log_min_messages: 'warning',
};

/** As root, PostgreSQL must run as another user: `postgres` (Debian's package creates it). */
function clusterUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const out = execFileSync('id', ['-u', 'postgres']).toString().trim();
  const gid = execFileSync('id', ['-g', 'postgres']).toString().trim();
  return { uid: Number(out), gid: Number(gid) };
}

function requireEngine(): void {
  for (const f of [FERRETDB_BIN, path.join(PG_BIN, 'postgres')]) {
    if (!existsSync(f)) throw new Error(`${f} not found: run \`bash scripts/setup.sh\` (it builds the engine)`);
  }
}

/** initdb into `dir` (when it holds no cluster yet) with the settings above, then `CREATE EXTENSION documentdb`. */
function initCluster(dir: string, user: { uid: number; gid: number } | undefined): boolean {
  if (existsSync(path.join(dir, 'PG_VERSION'))) return false;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (user) chownSync(dir, user.uid, user.gid);
  execFileSync(path.join(PG_BIN, 'initdb'), ['-D', dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(user ?? {}),
  });
  const conf = Object.entries(SETTINGS)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
  const file = path.join(dir, 'postgresql.conf');
  writeFileSync(file, `${readFileSync(file, 'utf8')}\n# mailroom (infra/dev/ferretdb.ts)\n${conf}\n`);
  return true;
}

export async function startFerretdb(opts: StartFerretdbOptions = {}): Promise<RunningFerretdb> {
  requireEngine();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const user = clusterUser();
  const ownDir = opts.dataDir ? undefined : makeTempDir('mailroom-pg-');
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : path.join(realpathSync(ownDir!), 'pg');
  if (ownDir && user) chownSync(ownDir, user.uid, user.gid);
  const fresh = initCluster(dataDir, user);
  const pgPort = await getFreePort();
  const port = opts.port ?? (await getFreePort());
  const pgUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;

  const psql = (sql: string, ms = 15_000) =>
    execFileSync('psql', [pgUrl, '-v', 'ON_ERROR_STOP=1', '-qtAc', sql], { timeout: ms, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

  let pg: ServerProcess | undefined;
  let fdb: ServerProcess | undefined;
  let stopped = false;

  const startPostgres = async () => {
    // Left by a postmaster that was killed outright (the exit hook's SIGKILL).
    const pidFile = path.join(dataDir, 'postmaster.pid');
    if (existsSync(pidFile)) {
      const old = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (!(old > 0 && pidAlive(old))) rmSync(pidFile, { force: true });
    }
    const sp = new ServerProcess(`postgres :${pgPort}`, path.join(PG_BIN, 'postgres'), ['-D', dataDir, '-p', String(pgPort)], {
      cwd: dataDir,
      ...(user ?? {}),
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (sp.hasExited) throw new Error(`PostgreSQL did not start (${sp.describeExit()})\n${sp.recentOutput()}`);
      try {
        psql('SELECT 1', 2000);
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          await sp.stop('SIGQUIT');
          throw new Error(`PostgreSQL on ${pgPort} did not answer: ${String(err)}\n${sp.recentOutput()}`);
        }
        await sleep(100);
      }
    }
    pg = sp;
  };

  const startFerret = async () => {
    const sp = new ServerProcess(
      `ferretdb :${port}`,
      FERRETDB_BIN,
      [
        `--listen-addr=127.0.0.1:${port}`,
        `--postgresql-url=${pgUrl}`,
        '--no-auth',
        '--debug-addr=-',
        '--telemetry=disable',
        '--state-dir=-',
        `--log-level=${opts.logLevel ?? 'error'}`,
      ],
      { cwd: dataDir },
    );
    try {
      await waitForPing(`mongodb://127.0.0.1:${port}/`, sp, Date.now() + timeoutMs);
    } catch (err) {
      await sp.stop('SIGKILL');
      throw err;
    }
    fdb = sp;
  };

  const start = async () => {
    if (stopped) throw new Error('startFerretdb: server was stopped for good; start a new one');
    if (!pg || pg.hasExited) await startPostgres();
    if (!fdb || fdb.hasExited) await startFerret();
  };
  const kill = async () => {
    await fdb?.stop('SIGKILL');
    // SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint, crash recovery at the next start.
    await pg?.stop('SIGQUIT', 10_000);
  };

  try {
    await startPostgres();
    if (fresh) psql('CREATE EXTENSION IF NOT EXISTS documentdb CASCADE', 120_000);
    await startFerret();
  } catch (err) {
    await kill();
    if (ownDir) removeTempDir(ownDir);
    throw err;
  }

  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    kind: 'ferretdb',
    port,
    pgPort,
    dataDir,
    get pid() {
      return fdb && !fdb.hasExited ? fdb.pid : undefined;
    },
    get pgPid() {
      return pg && !pg.hasExited ? pg.pid : undefined;
    },
    psql,
    kill,
    start,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await fdb?.stop('SIGTERM', 3000);
      // Fast shutdown: a dev cluster keeps its data.
      await pg?.stop('SIGINT', 10_000);
      if (ownDir) removeTempDir(ownDir);
    },
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves once a mongodb `ping` succeeds against FerretDB, rejects with the last error. */
async function waitForPing(uri: string, sp: ServerProcess, deadline: number): Promise<void> {
  const { MongoClient } = await import('mongodb');
  let lastErr: unknown;
  while (Date.now() < deadline && !sp.hasExited) {
    if (await canConnect(Number(new URL(uri).port), 500)) {
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
    }
    await sleep(100);
  }
  const why = sp.hasExited ? sp.describeExit() : `last error: ${String(lastErr)}`;
  throw new Error(`FerretDB at ${uri} did not answer ping (${why})\n${sp.recentOutput()}`);
}
