/**
 * Delivery-event throughput: signed `mailroom` webhooks over HTTP into the API, applied by the
 * delivery-event worker. Starts its own Redis and FerretDB, runs the API and the worker as
 * child processes (one core each, as deployed), seeds sent entries, posts the events with
 * bounded concurrency and reports events accepted/s (HTTP 2xx) and applied/s.
 *
 *   pnpm exec tsx bench/webhooks.bench.ts [--entries=5000] [--per-entry=4] [--per-request=50] [--concurrency=32] [--cpu-prof]
 *
 * `--cpu-prof` writes V8 CPU profiles of the API and the worker to .mailroom/profiles/.
 * `--worker-after` starts the worker only once every event is accepted: accepted/s is then the
 * API's alone on the two cores, and applied/s the worker's alone, timed from its first job (by
 * default both run at once and share the cores, as they would on one small host).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { logEntry } from '../tests/support/log-entry';
import {
  createDeliveryEventQueue,
  createEmailLogRepository,
  createRedis,
  EMAIL_LOGS,
  newId,
  type DeliveryEventType,
} from '@mailroom/shared';
import { startFerretdb } from '../infra/dev/ferretdb';
import { getFreePort, REPO_ROOT, sleep } from '../infra/dev/process';
import { startRedis } from '../infra/dev/redis';
import { v8OptionsFor } from '../apps/worker/src/v8-options';
import { signMailroomWebhook } from '../apps/api/src/webhooks/mailroom';
import { arg, cpuMeter, runBench } from './bench-kit';

const ENTRIES = Number(arg('entries', '5000'));
const PER_ENTRY = Number(arg('per-entry', '4'));
const PER_REQUEST = Number(arg('per-request', '50'));
const CONCURRENCY = Number(arg('concurrency', '32'));
const SECRET = 'bench-webhook-secret-0123456789';
const CPU_PROF = process.argv.includes('--cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${REPO_ROOT}/.mailroom/profiles`] : [];
const WORKER_AFTER = process.argv.includes('--worker-after');
const TYPES: DeliveryEventType[] = ['delivered', 'opened', 'clicked', 'opened', 'delivery_delayed', 'clicked'];

function startChild(entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [...CPU_PROF, ...v8OptionsFor(entry), '--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  child.on('exit', (code) => code && code !== 0 && console.error(`${entry} exited with ${code}`));
  return child;
}

async function main() {
  const ns = `bench${randomUUID().slice(0, 8)}`;
  const [redis, mongo] = await Promise.all([startRedis(), startFerretdb()]);
  const port = await getFreePort();
  const env = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    MONGODB_URI: `${mongo.uri.replace(/\/?$/, '/')}${ns}_main`,
    LOGS_MONGODB_DB: `${ns}_logs`,
    MANAGED_SMTP_URL: 'smtp://127.0.0.1:1',
    MANAGED_FROM: 'Bench <bench@mailroom.test>',
    QUEUE_PREFIX: `{${ns}}`,
    WEBHOOK_SECRET: SECRET,
  };
  const mc = await MongoClient.connect(mongo.uri);
  const logsDb = mc.db(`${ns}_logs`);
  const sentAt = new Date(Date.now() - 3600_000);
  const ids = Array.from({ length: ENTRIES }, () => newId('em'));
  // Through the repository: the entries' partition gets the indexes it has in production.
  const logRepo = createEmailLogRepository(logsDb);
  for (let i = 0; i < ids.length; i += 1000) {
    await logRepo.importEntries(
      ids
        .slice(i, i + 1000)
        .map((id) =>
          logEntry('ws_bench', { _id: id, sentAt, recipient: 'r@bench.test', type: 'other', from: 'b@bench.test', subject: 'Bench' }),
        ),
    );
  }
  const api = startChild('apps/api/src/main.ts', env);
  let worker = WORKER_AFTER ? null : startChild('apps/worker/src/main.ts', env);
  const base = `http://127.0.0.1:${port}`;
  for (
    let i = 0;
    i < 200 &&
    !(await fetch(`${base}/healthz`)
      .then((r) => r.ok)
      .catch(() => false));
    i++
  )
    await sleep(100);

  const events = ids.flatMap((id, n) =>
    Array.from({ length: PER_ENTRY }, (_, k) => ({
      id: `${id}-${k}`,
      type: TYPES[(n + k) % TYPES.length]!,
      timestamp: new Date(sentAt.getTime() + 60_000 + k * 1000).toISOString(),
      emailId: id,
    })),
  );
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += PER_REQUEST) {
    const slice = events.slice(i, i + PER_REQUEST);
    bodies.push(JSON.stringify(PER_REQUEST === 1 ? slice[0] : slice));
  }
  console.log(
    `FerretDB 2 + DocumentDB entries=${ENTRIES} events=${events.length} per-request=${PER_REQUEST} requests=${bodies.length} concurrency=${CONCURRENCY}`,
  );

  const queueRedis = createRedis(redis.url, 'client');
  const queue = createDeliveryEventQueue(queueRedis, `{${ns}}`, 1, 1000);
  // CPU of every process involved, from the first request to the last event applied (with
  // --worker-after: while accepting, then while applying).
  const servers = { ferretdb: mongo.pid, redis: redis.pid };
  const acceptCpu = cpuMeter({ api: api.pid, ...(worker ? { worker: worker.pid } : {}), ...servers }, { postgres: true });
  const t0 = Date.now();
  let next = 0;
  let accepted = 0;
  let rejected = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const r = await fetch(`${base}/v1/webhooks/mailroom`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', 'mailroom-signature': signMailroomWebhook(SECRET, body) },
        });
        await r.arrayBuffer();
        if (r.ok) accepted += PER_REQUEST === 1 ? 1 : (JSON.parse(body) as unknown[]).length;
        else rejected++;
      }
    }),
  );
  const acceptMs = Date.now() - t0;
  console.log(
    `accepted ${accepted} events (${rejected} requests rejected) in ${acceptMs} ms: ${Math.round((accepted / acceptMs) * 1000)} events/s, ${Math.round((bodies.length / acceptMs) * 1000)} requests/s`,
  );
  let applyFrom = t0;
  let cpu = acceptCpu;
  if (!worker) {
    console.log(`CPU used while accepting: ${acceptCpu.report(accepted, 'event')}`);
    worker = startChild('apps/worker/src/main.ts', env);
    cpu = cpuMeter({ api: api.pid, worker: worker.pid, ...servers }, { postgres: true });
    // Timed from the worker's first job: its start-up (loading TypeScript) is not applying.
    while ((await queue.getWaitingCount()) >= accepted) await sleep(20);
    applyFrom = Date.now();
  }
  let done = 0;
  let lastReport = Date.now();
  for (;;) {
    // Counted from the jobs still to run: Redis keeps only the last 50,000 finished ones.
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
    done = accepted - Object.values(c).reduce((a, b) => a + b, 0);
    if (done >= accepted || Date.now() - t0 > 600_000) break;
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      console.log(`  … ${done} applied after ${lastReport - applyFrom} ms`);
    }
    await sleep(100);
  }
  const applyMs = Date.now() - applyFrom;
  console.log(`CPU used${WORKER_AFTER ? ' while applying' : ''}: ${cpu.report(done, 'event')} (wall ${(applyMs / 1000).toFixed(1)}s)`);
  const clicked = await logsDb.collection(EMAIL_LOGS).countDocuments({ status: 'clicked' });
  console.log(
    `applied ${done} events to ${ENTRIES} entries in ${applyMs} ms from ${WORKER_AFTER ? "the worker's first job" : 'the first request'}: ${Math.round((done / applyMs) * 1000)} events/s (${clicked} entries now clicked)`,
  );

  api.kill('SIGTERM');
  worker.kill('SIGTERM');
  await queue.close();
  queueRedis.disconnect();
  await mc.close();
  await sleep(1000);
  await Promise.all([redis.stop(), mongo.stop()]);
}

runBench(main);
