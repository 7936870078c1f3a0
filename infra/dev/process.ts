/**
 * Small process helpers for the dev/test server launchers: free ports, spawning a server
 * with its recent output kept for error messages, waiting for it to exit, and a last-resort
 * cleanup that kills leftover servers and removes their temp dirs when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Absolute path of the repository root (this file is at infra/dev/). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

const handedOutPorts = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago (not handed out before by this process). */
export async function getFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error('could not find a free TCP port on 127.0.0.1');
}

/** Resolves true once a TCP connection to 127.0.0.1:port succeeds, false on refusal/timeout. */
export function canConnect(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Finds an executable by name on PATH, then in the given fallback locations. */
export function findExecutable(name: string, fallbacks: string[] = []): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const candidate of [...dirs.map((d) => path.join(d, name)), ...fallbacks]) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Starts a server on `port`, or on a free port: a port picked as free may be taken by someone
 * else before the server binds it, so a few are tried. Returns the port it runs on.
 */
export async function startOnPort(port: number | undefined, start: (port: number) => Promise<void>): Promise<number> {
  if (port !== undefined) {
    await start(port);
    return port;
  }
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const candidate = await getFreePort();
    try {
      await start(candidate);
      return candidate;
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Last-resort cleanup: servers still running (and temp dirs still present) when this
// process exits are killed/removed, so a crashed test run does not leave them behind.
const liveChildren = new Set<ChildProcess>();
const liveTempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of liveTempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

/** Creates a temp dir that is removed on process exit unless `removeTempDir` ran first. */
export function makeTempDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  liveTempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  liveTempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned server: its recent output, a promise of its exit, and helpers to wait on output. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  private readonly lines: string[] = [];
  private readonly lineListeners = new Set<(line: string) => void>();

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
  ) {
    installExitHook();
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveChildren.add(this.child);
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (err) => {
        this.pushLine(`[spawn error] ${err.message}`);
        this.exitInfo ??= { code: null, signal: null };
        liveChildren.delete(this.child);
        resolve(this.exitInfo);
      });
      this.child.once('exit', (code, signal) => {
        this.exitInfo ??= { code, signal };
        liveChildren.delete(this.child);
        resolve(this.exitInfo);
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        partial += chunk;
        let nl: number;
        while ((nl = partial.indexOf('\n')) >= 0) {
          this.pushLine(partial.slice(0, nl));
          partial = partial.slice(nl + 1);
        }
      });
      stream?.on('end', () => {
        if (partial) this.pushLine(partial);
        partial = '';
      });
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True once the process has exited (or failed to spawn). */
  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  private pushLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 60) this.lines.shift();
    for (const listener of this.lineListeners) listener(line);
  }

  /** The last lines of output, for error messages. */
  recentOutput(): string {
    return this.lines.map((l) => `  | ${l}`).join('\n');
  }

  describeExit(): string {
    const info = this.exitInfo;
    if (!info) return `${this.name} is still running`;
    return `${this.name} exited (code ${info.code ?? '-'}, signal ${info.signal ?? '-'})`;
  }

  /** Resolves when a line of output contains `needle`; rejects if the process exits or on timeout. */
  waitForLine(needle: string, timeoutMs: number): Promise<void> {
    if (this.lines.some((l) => l.includes(needle))) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        this.lineListeners.delete(onLine);
      };
      const onLine = (line: string) => {
        if (line.includes(needle)) {
          cleanup();
          resolve();
        }
      };
      this.lineListeners.add(onLine);
      timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no "${needle}" after ${timeoutMs} ms\n${this.recentOutput()}`));
      }, timeoutMs);
      void this.exited.then(() => {
        // Let the stream listeners deliver the last lines first.
        setImmediate(() => {
          if (!this.lineListeners.has(onLine)) return;
          cleanup();
          reject(new Error(`${this.describeExit()} before it was ready\n${this.recentOutput()}`));
        });
      });
    });
  }

  /** Sends `signal` and waits for exit; sends SIGKILL if it is still running after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (this.hasExited) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
    if (signal !== 'SIGKILL') {
      const timer = setTimeout(() => {
        try {
          this.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await this.exited;
      clearTimeout(timer);
    } else {
      await this.exited;
    }
  }
}
