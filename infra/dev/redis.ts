/**
 * Starts a throwaway `redis-server` (Debian package) on 127.0.0.1 for dev and tests.
 *
 *   const redis = await startRedis();           // free port, no persistence
 *   const redis = await startRedis({ persist: true }); // AOF in a temp dir: restart keeps data
 *   redis.url   // redis://127.0.0.1:PORT
 *   await redis.restart(); await redis.stop();
 */
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import { ServerProcess, findExecutable, startOnPort, makeTempDir, removeTempDir, sleep } from './process';

export interface StartRedisOptions {
  /** Port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /**
   * Keep data across `restart()` / `kill()`+`start()`: runs with `--appendonly yes` in a temp
   * dir (or `dataDir`). Without it the server keeps nothing (`--save '' --appendonly no`).
   */
  persist?: boolean;
  /** Directory for the AOF files when `persist` is set (not removed by `stop()`). */
  dataDir?: string;
  /** Extra redis-server arguments, e.g. `['--maxmemory', '64mb']`. */
  args?: string[];
  /** How long to wait for the server to answer (default 15 s). */
  timeoutMs?: number;
}

export interface RunningRedis {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Shuts the server down (SIGTERM, waits for exit) and removes the temp dir it created. Idempotent. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port (same data when `persist` is set). */
  restart(): Promise<void>;
  /** Shuts the server down (SIGTERM) but keeps its data dir; `start()` brings it back. */
  kill(): Promise<void>;
  /** Starts a killed server again on the same port. No-op when it is running. */
  start(): Promise<void>;
  /** Whether data survives restarts (AOF on). */
  readonly persist: boolean;
  /** The AOF directory when `persist` is set. */
  readonly dataDir: string | undefined;
  /** PID of the current redis-server process (undefined while killed). */
  readonly pid: number | undefined;
}

function redisServerPath(): string {
  const found = findExecutable('redis-server', ['/usr/bin/redis-server', '/usr/local/bin/redis-server']);
  if (!found) {
    throw new Error('redis-server not found on PATH: run `pnpm setup` (installs the Debian package redis-server)');
  }
  return found;
}

/** Sends one command over a fresh connection and returns the reply (simple/bulk string). */
function redisCommand(port: number, args: string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const finish = (err: Error | undefined, value?: string) => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      if (err) reject(err);
      else resolve(value ?? '');
    };
    sock.setTimeout(timeoutMs, () => finish(new Error('timeout')));
    sock.once('error', (err) => finish(err));
    sock.once('close', () => finish(new Error('connection closed')));
    sock.once('connect', () => {
      const parts = [`*${args.length}\r\n`];
      for (const a of args) parts.push(`$${Buffer.byteLength(a)}\r\n${a}\r\n`);
      sock.write(parts.join(''));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(0, eol).toString('utf8');
      const type = head[0];
      if (type === '+') return finish(undefined, head.slice(1));
      if (type === '-') return finish(new Error(head.slice(1)));
      if (type === '$') {
        const len = Number(head.slice(1));
        if (len < 0) return finish(undefined, '');
        if (buf.length < eol + 2 + len + 2) return;
        return finish(undefined, buf.subarray(eol + 2, eol + 2 + len).toString('utf8'));
      }
      return finish(new Error(`unexpected reply: ${head}`));
    });
  });
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RunningRedis> {
  const binary = redisServerPath();
  const persist = opts.persist ?? false;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let ownDataDir: string | undefined;
  let dataDir: string | undefined = opts.dataDir;
  let proc: ServerProcess | undefined;
  let port = opts.port ?? 0;
  let stopped = false;

  const ensureDataDir = (): string | undefined => {
    if (!persist) return undefined;
    if (!dataDir) {
      ownDataDir = makeTempDir('mailroom-redis-');
      dataDir = ownDataDir;
    }
    mkdirSync(dataDir, { recursive: true });
    return dataDir;
  };

  const argsFor = (p: number): string[] => {
    const dir = ensureDataDir();
    const args = [
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
      '--loglevel',
      'notice',
    ];
    if (dir) args.push('--appendonly', 'yes', '--dir', dir);
    else args.push('--appendonly', 'no');
    return [...args, ...(opts.args ?? [])];
  };

  /** Starts redis-server on `p` and waits until this very process (checked by pid) answers. */
  const launch = async (p: number): Promise<ServerProcess> => {
    const sp = new ServerProcess(`redis-server :${p}`, binary, argsFor(p));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (sp.hasExited) {
        throw new Error(`${sp.describeExit()} before it was ready\n${sp.recentOutput()}`);
      }
      try {
        if ((await redisCommand(p, ['PING'])) === 'PONG') {
          const info = await redisCommand(p, ['INFO', 'server']);
          const pid = /process_id:(\d+)/.exec(info)?.[1];
          // Another server on this port answering means ours failed to bind: keep waiting for its exit.
          if (pid !== undefined && Number(pid) === sp.pid) return sp;
        }
      } catch {
        // not up yet (or still loading the AOF)
      }
      if (Date.now() > deadline) {
        await sp.stop('SIGKILL');
        throw new Error(`redis-server on port ${p} did not answer PING within ${timeoutMs} ms\n${sp.recentOutput()}`);
      }
      await sleep(sp.hasExited ? 0 : 25);
    }
  };

  const startOnce = async (): Promise<void> => {
    if (proc && !proc.hasExited) return;
    proc = await launch(port);
  };

  port = await startOnPort(opts.port, async (p) => {
    port = p;
    proc = undefined;
    await startOnce();
  });

  const kill = async (): Promise<void> => {
    await proc?.stop('SIGTERM', 10_000);
  };

  const handle: RunningRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    persist,
    get dataDir() {
      return dataDir;
    },
    get pid() {
      return proc && !proc.hasExited ? proc.pid : undefined;
    },
    kill,
    async start() {
      if (stopped) throw new Error('startRedis: server was stopped for good; start a new one');
      await startOnce();
    },
    async restart() {
      if (stopped) throw new Error('startRedis: server was stopped for good; start a new one');
      await kill();
      await startOnce();
    },
    async stop() {
      stopped = true;
      await kill();
      if (ownDataDir) removeTempDir(ownDataDir);
    },
  };
  return handle;
}
