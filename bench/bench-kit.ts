/** Small helpers shared by the benchmark scripts: flags, percentiles, timestamped output, CPU used. */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * CPU used by the named processes, and by PostgreSQL's when `postgres` (FerretDB's backend),
 * from now until `report`: `api 1.2s, worker 5.0s, …; 980 µs of CPU an event`.
 */
export function cpuMeter(pids: Record<string, number | undefined>, opts: { postgres: boolean }) {
  const now = (): Record<string, number> => ({
    ...Object.fromEntries(Object.entries(pids).flatMap(([k, pid]) => (pid ? [[k, cpuSeconds(pid)]] : []))),
    ...(opts.postgres ? { postgresql: postgresCpuSeconds() } : {}),
  });
  const start = now();
  return {
    report(units: number, unit: string): string {
      const used = Object.entries(now()).map(([k, v]) => [k, v - (start[k] ?? 0)] as const);
      const total = used.reduce((a, [, v]) => a + v, 0);
      return `${used.map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}; ${((total / Math.max(units, 1)) * 1e6).toFixed(0)} µs of CPU an ${unit}`;
    },
  };
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
