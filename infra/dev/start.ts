/**
 * `pnpm start`: the whole system on embedded defaults. Starts what is not configured
 * (Redis, a MongoDB-compatible server, an SMTP sink with the mailbox simulator as the managed
 * provider), then the API, the worker and the scheduler as child processes. Ctrl-C stops all.
 *
 * Anything set in the environment wins: REDIS_URL, MONGODB_URI, MANAGED_SMTP_URL, PORT, …
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startFerretdb } from './ferretdb';
import { getFreePort, REPO_ROOT } from './process';
import { startRedis } from './redis';
import { WORKER_V8_OPTIONS } from '../../apps/worker/src/v8-options';

const DATA = path.join(REPO_ROOT, '.mailroom', 'data');
const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
/** Development only: production sets its own WEBHOOK_SECRET for the providers it uses. */
const DEV_WEBHOOK_SECRET = 'mailroom-dev-webhook-secret';

function say(line: string) {
  process.stdout.write(`[mailroom] ${line}\n`);
}

async function main() {
  const env: Record<string, string | undefined> = { ...process.env };
  const stops: Array<() => Promise<void>> = [];

  if (!env.REDIS_URL) {
    const redis = await startRedis({ persist: true, dataDir: path.join(DATA, 'redis') });
    stops.push(() => redis.stop());
    env.REDIS_URL = redis.url;
    say(`redis-server on ${redis.url} (data in .mailroom/data/redis)`);
  }
  if (!env.MONGODB_URI) {
    // FerretDB 2 on a PostgreSQL + DocumentDB cluster of its own, kept in .mailroom/data/pg.
    const mongo = await startFerretdb({ dataDir: path.join(DATA, 'pg') });
    stops.push(() => mongo.stop());
    env.MONGODB_URI = `${mongo.uri.replace(/\/?$/, '/')}mailroom`;
    say(
      `FerretDB 2 (MongoDB wire protocol) on ${mongo.uri}, PostgreSQL + DocumentDB on 127.0.0.1:${mongo.pgPort} (data in .mailroom/data/pg)`,
    );
  }

  const children: ChildProcess[] = [];
  const spawnApp = (name: string, entry: string, extra: Record<string, string> = {}) => {
    const child = spawn(TSX, [path.join(REPO_ROOT, entry)], { env: { ...env, ...extra }, stdio: 'inherit' });
    child.on('exit', (code, signal) => {
      if (!stopping) {
        say(`${name} exited (${signal ?? code}); stopping everything`);
        void stop(1);
      }
    });
    children.push(child);
  };

  env.PORT ??= '3000';
  // The mailbox simulator reports provider events to our own webhook route, signed with this.
  env.WEBHOOK_SECRET ??= DEV_WEBHOOK_SECRET;
  if (!env.MANAGED_SMTP_URL) {
    const port = Number(env.SMTP_SINK_PORT ?? (await getFreePort()));
    const openWindowMs = Number(env.MACHINE_OPEN_WINDOW_SECONDS ?? 2) * 1000;
    spawnApp('smtp-sink', 'infra/dev/smtp-sink.main.ts', {
      SMTP_SINK_PORT: String(port),
      SIMULATOR_WEBHOOK_URL: `http://127.0.0.1:${env.PORT}/v1/webhooks/mailroom`,
      SIMULATOR_WEBHOOK_SECRET: env.WEBHOOK_SECRET,
      SIMULATOR_OPEN_AFTER_MS: String(openWindowMs + 1000),
    });
    env.MANAGED_SMTP_URL = `smtp://127.0.0.1:${port}`;
    env.MANAGED_FROM ??= 'Mailroom <no-reply@mailroom.localhost>';
    say(`SMTP sink with the mailbox simulator as the managed provider on ${env.MANAGED_SMTP_URL}`);
  }
  env.SMTP_IGNORE_TLS ??= 'true';

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    for (const s of stops.reverse()) await s().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  spawnApp('api', 'apps/api/src/main.ts');
  // tsx starts node, which takes V8 options from NODE_OPTIONS; the caller's own come last and win.
  spawnApp('worker', 'apps/worker/src/main.ts', { NODE_OPTIONS: [...WORKER_V8_OPTIONS, env.NODE_OPTIONS].filter(Boolean).join(' ') });
  spawnApp('scheduler', 'apps/scheduler/src/main.ts');

  say(`API on http://localhost:${env.PORT}  (health: /healthz, readiness: /readyz)`);
  if (!process.env.OPERATOR_TOKEN) say('operator token (development default): mailroom-dev-operator-token');
  say(
    `create a workspace:  curl -s -X POST localhost:${env.PORT}/v1/workspaces -H 'Authorization: Bearer ${process.env.OPERATOR_TOKEN ? '$OPERATOR_TOKEN' : 'mailroom-dev-operator-token'}' -H 'Content-Type: application/json' -d '{"name":"Acme"}'`,
  );
  say(
    'simulator recipients at simulator.mailroom.test: delivered@ opened@ clicked@ bounce-async@ complained@ delayed@ (provider events follow), bounce@ tempfail@ tempfail-once@ slow@ mailboxfull@ blocked@ (SMTP replies)',
  );
}

main().catch((err) => {
  console.error('[mailroom] failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
