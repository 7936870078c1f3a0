/** Small helpers shared by the benchmark scripts: flags, percentiles, timestamped output, CPU used. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SendEmailInput } from '@mailroom/shared';
import { REPO_ROOT } from '../infra/dev/process';
import { v8OptionsFor } from '../apps/worker/src/v8-options';

/** `--name=value` from the command line, or `dflt`. */
export const arg = (name: string, dflt: string): string =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.split('=')
    .slice(1)
    .join('=') ?? dflt;

/** The p-th percentile (nearest rank) of `xs`. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export const say = (msg: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds used so far by every PostgreSQL process of the machine (FerretDB's backend). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') total += cpuSeconds(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** User and system CPU seconds, and read and write system calls, of `pid` so far (`/proc/<pid>/stat`, `/proc/<pid>/io`). */
function processCounters(pid: number): { user: number; sys: number; reads: number; writes: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const io = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(': ') as [string, string]),
  );
  return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100, reads: Number(io.syscr), writes: Number(io.syscw) };
}

/**
 * CPU used by the named processes, and by PostgreSQL's when `postgres` (FerretDB's backend),
 * from now until `report`: `api 1.2s, worker 5.0s, …; 980 µs of CPU an event`. With one process,
 * the line also splits its CPU into user and system time and counts its read and write system
 * calls a unit: counts that the machine's noise does not move, to tell where a change saved.
 */
export function cpuMeter(pids: Record<string, number | undefined>, opts: { postgres: boolean }) {
  const now = (): Record<string, number> => ({
    ...Object.fromEntries(Object.entries(pids).flatMap(([k, pid]) => (pid ? [[k, cpuSeconds(pid)]] : []))),
    ...(opts.postgres ? { postgresql: postgresCpuSeconds() } : {}),
  });
  const only = Object.values(pids).length === 1 && !opts.postgres ? Object.values(pids)[0] : undefined;
  const counters = () => (only ? processCounters(only) : null);
  const start = now();
  const startCounters = counters();
  const measure = (units: number, unit: string) => {
    const used = Object.entries(now()).map(([k, v]) => [k, v - (start[k] ?? 0)] as const);
    const total = used.reduce((a, [, v]) => a + v, 0);
    const n = Math.max(units, 1);
    const usPerUnit = (total / n) * 1e6;
    const end = counters();
    const detail =
      end && startCounters
        ? ` (user ${(((end.user - startCounters.user) / n) * 1e6).toFixed(0)} + system ${(((end.sys - startCounters.sys) / n) * 1e6).toFixed(0)} µs; ` +
          `${((end.reads - startCounters.reads) / n).toFixed(2)} reads and ${((end.writes - startCounters.writes) / n).toFixed(2)} writes (system calls) a${/^[aeiou]/.test(unit) ? 'n' : ''} ${unit})`
        : '';
    return {
      usPerUnit,
      line: `${used.map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}; ${usPerUnit.toFixed(0)} µs of CPU a${/^[aeiou]/.test(unit) ? 'n' : ''} ${unit}${detail}`,
    };
  };
  return { measure, report: (units: number, unit: string): string => measure(units, unit).line };
}

/**
 * Binds every thread of `pid` to the CPUs in `cpus` (`taskset -a -c`, e.g. "1"); threads it
 * starts later inherit it. `--pin` of the throughput bench gives the process measured a core of
 * its own and the servers around it the other.
 */
export function pinTo(pid: number, cpus: string): void {
  // taskset -a fails when one of the threads it listed has exited meanwhile: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

/**
 * A TypeScript entry point of the repository in its own node process (node itself, not the tsx
 * launcher, so pid, CPU and RSS are the app's own), with the V8 options the app runs with
 * (apps/worker/src/v8-options.ts); resolves once its output matches `readyLine`.
 */
export function startNode(
  name: string,
  entry: string,
  env: Record<string, string | undefined>,
  readyLine: RegExp,
  nodeArgs: string[] = [],
  /** CPUs to bind the process to once it is ready (see pinTo). */
  cpus?: string,
): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF=<dir>: every process started here writes V8 CPU profiles (one a thread:
    // tsx's loader has its own) to <dir>/<name>/ on exit.
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_CPU_PROF, name)}`] : [];
    const c = spawn(process.execPath, [...prof, ...v8OptionsFor(entry), ...nodeArgs, '--import', 'tsx', path.join(REPO_ROOT, entry)], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let ready = false;
    // Read for as long as the process runs (a full pipe would block it); kept only until it is ready.
    const onData = (d: Buffer) => {
      if (ready) return;
      out += d.toString();
      if (!readyLine.test(out)) return;
      ready = true;
      if (cpus) pinTo(c.pid!, cpus);
      resolve(c);
    };
    c.stdout!.on('data', onData);
    c.stderr!.on('data', onData);
    c.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${out.slice(-2000)}`)));
  });
}

/** SIGTERM, then wait for the exit so the next leg does not share the CPU with it. */
export function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => (c.kill('SIGKILL'), resolve()), 10_000);
    c.once('exit', () => (clearTimeout(t), resolve()));
    c.kill('SIGTERM');
  });
}

/**
 * `n` `POST /v1/emails` with `body(i)` from `concurrency` clients at once, as application code
 * sends them; resolves with how many were not answered `202`.
 */
/** The invoice the benches send, numbered: the same on every leg. */
export const invoice = (i: number): SendEmailInput => ({
  to: `delivered+${i}@simulator.mailroom.test`,
  type: 'invoice',
  subject: `Invoice ${i}`,
  html: `<p>Invoice ${i} is ready.</p>`,
  reference: { kind: 'invoice', id: `inv_${i}` },
});

export async function postEmails(
  base: string,
  key: string,
  n: number,
  concurrency: number,
  body: (i: number) => unknown,
): Promise<{ rejected: number }> {
  let next = 0;
  let rejected = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const r = await fetch(`${base}/v1/emails`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body(i)),
        });
        if (r.status !== 202) rejected++;
        await r.arrayBuffer();
      }
    }),
  );
  return { rejected };
}

/** Resident memory of a process in MB (NaN once it has exited). */
export function rssMb(pid: number): number {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return NaN; // the process has exited
  }
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Runs a bench's main and exits: 0 when it resolves, 1 with the error printed when it throws. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
