/**
 * Autovacuum's work for one FerretDB scratch database, for PostgreSQL servers configured with
 * `autovacuum = off` (some CI machines are). Without it a database that FerretDB updates never
 * loses its dead rows or gathers statistics: every update leaves a dead row version in the table
 * and in each index, and the planner guesses sizes. Measured on such a server with
 * bench/webhooks.bench.ts: 673 events/s applied with autovacuum off, 1,080 with it on, 1,020
 * with this keeper.
 *
 * Every `intervalMs`, the tables past autovacuum's default thresholds (dead rows over 50 + 20% of
 * the live ones, or rows changed since the last analyze over 50 + 10%) get `VACUUM (ANALYZE)`,
 * throttled with autovacuum's default cost delay, as autovacuum would do. One pass at a time;
 * the timer never keeps the process alive. On a server with autovacuum on this does nothing.
 */
import { execFile } from 'node:child_process';

const DUE_TABLES = `
SELECT string_agg(format('%I.%I', schemaname, relname), ', ')
FROM pg_stat_user_tables
WHERE n_dead_tup > 50 + 0.2 * n_live_tup OR n_mod_since_analyze > 50 + 0.1 * n_live_tup`;

/** Runs each of `sql` as its own command (VACUUM may not share a command string), in one session. */
function psqlAsync(url: string, sql: string | string[], timeoutMs: number): Promise<string> {
  const commands = (Array.isArray(sql) ? sql : [sql]).flatMap((c) => ['-c', c]);
  return new Promise((resolve, reject) => {
    execFile('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qtA', ...commands], { timeout: timeoutMs }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.toString()),
    );
  });
}

export interface VacuumKeeper {
  /** Waits for a pass in progress, then stops. */
  stop(): Promise<void>;
}

/** Starts keeping `databaseUrl` vacuumed when the server's autovacuum is off; null when it is on. */
export async function keepVacuumedIfNeeded(databaseUrl: string, intervalMs = 10_000): Promise<VacuumKeeper | null> {
  if ((await psqlAsync(databaseUrl, 'SHOW autovacuum', 5000)).trim() !== 'off') return null;
  let running: Promise<void> | null = null;
  const pass = async () => {
    try {
      const due = (await psqlAsync(databaseUrl, DUE_TABLES, 10_000)).trim();
      // Throttled as autovacuum throttles itself by default (a manual VACUUM is not): it must not
      // take the I/O and CPU that the queries it serves need.
      if (due)
        await psqlAsync(
          databaseUrl,
          ["SET vacuum_cost_delay = '2ms'", 'SET vacuum_cost_limit = 200', `VACUUM (ANALYZE, SKIP_LOCKED) ${due}`],
          600_000,
        );
    } catch {
      // The database may be going away (a test's scratch database): the next pass tries again.
    }
  };
  const timer = setInterval(() => {
    running ??= pass().finally(() => {
      running = null;
    });
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
