/**
 * Builds FerretDB from our small main module in infra/ferretdb/ (see its main.go for why) and
 * caches the binary under .mailroom/bin/, keyed by a hash of its sources; one build at a time
 * across processes (a lock file).
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, findExecutable, sleep } from './process';

export const FERRETDB_SOURCE_DIR = path.join(REPO_ROOT, 'infra', 'ferretdb');
const BIN_DIR = path.join(REPO_ROOT, '.mailroom', 'bin');
const SOURCE_FILES = ['main.go', 'go.mod', 'go.sum'];
/** A lock older than this is taken to be left over by a build that died. */
const STALE_LOCK_MS = 30 * 60_000;
const BUILD_TIMEOUT_MS = 30 * 60_000;

function goBinary(): string {
  const found = findExecutable('go', ['/usr/local/go/bin/go']);
  if (!found) {
    throw new Error('Go toolchain not found (PATH or /usr/local/go/bin/go): run `pnpm setup`');
  }
  return found;
}

function sourceHash(): string {
  const h = createHash('sha256');
  h.update(`${process.platform}-${process.arch}\0`);
  for (const f of SOURCE_FILES) {
    h.update(`${f}\0`);
    h.update(readFileSync(path.join(FERRETDB_SOURCE_DIR, f)));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the build lock (a file created with O_EXCL holding our pid); false if someone else holds it. */
function tryLock(lockPath: string): boolean {
  try {
    const fd = openSync(lockPath, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // Held: break it if its owner is gone or it is very old.
  try {
    const owner = Number(readFileSync(lockPath, 'utf8').trim());
    const age = Date.now() - statSync(lockPath).mtimeMs;
    if ((Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) || age > STALE_LOCK_MS) {
      rmSync(lockPath, { force: true });
    }
  } catch {
    // lock vanished meanwhile (or is being written): retry later
  }
  return false;
}

function runGoBuild(go: string, outPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      go,
      ['build', '-buildvcs=false', '-trimpath', '-o', outPath, '.'],
      {
        cwd: FERRETDB_SOURCE_DIR,
        env: { ...process.env, CGO_ENABLED: '0' },
        timeout: BUILD_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`go build of infra/ferretdb failed: ${err.message}\n${stdout}${stderr}`));
        } else {
          resolve();
        }
      },
    );
  });
}

let binaryPromise: Promise<string> | undefined;

/**
 * Path of the FerretDB binary, built with `go build` into .mailroom/bin/ferretdb-<hash> only if
 * that file is missing. Safe to call from several processes at once (lock file + atomic rename).
 */
export function ensureFerretdbBinary(): Promise<string> {
  binaryPromise ??= buildIfMissing().catch((err: unknown) => {
    binaryPromise = undefined;
    throw err;
  });
  return binaryPromise;
}

async function buildIfMissing(): Promise<string> {
  const name = `ferretdb-${sourceHash()}`;
  const binPath = path.join(BIN_DIR, name);
  if (existsSync(binPath)) return binPath;

  mkdirSync(BIN_DIR, { recursive: true });
  const lockPath = `${binPath}.lock`;
  let announced = false;
  while (!tryLock(lockPath)) {
    if (existsSync(binPath)) return binPath;
    if (!announced) {
      process.stderr.write(`[mailroom] waiting for another process building ${name}...\n`);
      announced = true;
    }
    await sleep(250);
  }
  try {
    if (existsSync(binPath)) return binPath; // built while we waited for the lock
    const go = goBinary();
    const started = Date.now();
    process.stderr.write(`[mailroom] building FerretDB (${path.relative(REPO_ROOT, binPath)}) with ${go}...\n`);
    const tmpPath = `${binPath}.tmp-${process.pid}`;
    try {
      await runGoBuild(go, tmpPath);
      renameSync(tmpPath, binPath);
    } finally {
      rmSync(tmpPath, { force: true });
    }
    process.stderr.write(`[mailroom] built FerretDB in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    // Old builds (other source hashes) are 30+ MB each: drop them.
    for (const f of readdirSync(BIN_DIR)) {
      if (/^ferretdb-[0-9a-f]{16}$/.test(f) && f !== name && !existsSync(path.join(BIN_DIR, `${f}.lock`))) {
        rmSync(path.join(BIN_DIR, f), { force: true });
      }
    }
    return binPath;
  } finally {
    rmSync(lockPath, { force: true });
  }
}
