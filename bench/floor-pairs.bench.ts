/**
 * The API and the worker against their libraries' floors, in adjacent pairs. Each process is
 * started once and kept; batches of --batch units go to ours and to its floor in turn (A B, B A,
 * …), and each process's CPU is measured over its own batch only:
 *   API:    POST /v1/emails from --concurrency clients into the API, its queue consumed by nobody
 *           (as floor (a) is measured), against floor (a) (bench/floors/enqueue-floor.main.ts);
 *   worker: jobs queued by the producer in chunks of --chunk, sent into the SMTP sink and logged,
 *           against floor (b) (bench/floors/worker-floor.main.ts). The worker runs with its V8
 *           options (apps/worker/src/v8-options.ts), the floor with V8's defaults, or with the
 *           worker's options too when --floor-v8=worker (the same young generation on both sides).
 * Each line also counts the Redis commands an email (INFO commandstats, the producer's included).
 * On this machine the speed of the cores drifts over tens of seconds (a floor measured twice a
 * minute apart differed by 1.8×); a pair is measured within a few seconds, so each pair's ratio
 * sees one machine, and the median of --pairs ratios is the figure the targets are judged by.
 * A first batch each warms the processes up (JIT, key cache, pools) and is not counted.
 *
 *   pnpm exec tsx bench/floor-pairs.bench.ts [--pairs=10] [--batch=1000] [--concurrency=64]
 *     [--chunk=200] [--only=api|worker] [--floor-v8=default|worker] [--others=1]
 */
import type { ChildProcess } from 'node:child_process';
import { MongoClient } from 'mongodb';
import {
  createEmailProducer,
  createRedis,
  createSendEmailQueue,
  createWorkspaceRepository,
  type RedisClient,
  type SendEmailQueue,
} from '@mailroom/shared';
import { arg, cpuMeter, invoice, postEmails, runBench, say, sleep, startNode, stop } from './bench-kit';
import { startFerretdb } from '../infra/dev/ferretdb';
import { getFreePort } from '../infra/dev/process';
import { startRedis } from '../infra/dev/redis';
import { WORKER_V8_OPTIONS } from '../apps/worker/src/v8-options';

const PAIRS = Number(arg('pairs', '10'));
const BATCH = Number(arg('batch', '1000'));
const CONCURRENCY = Number(arg('concurrency', '64'));
const CHUNK = Number(arg('chunk', '200'));
const ONLY = arg('only', '');
const FLOOR_V8 = arg('floor-v8', 'default') === 'worker' ? [...WORKER_V8_OPTIONS] : [];
/** The servers' CPU (Redis, FerretDB, PostgreSQL, the sink) during each worker batch, on its line. */
const OTHERS = arg('others', '') !== '';
const OPERATOR_TOKEN = 'bench-operator-token-0123456789';

/** One side of a pair: runs a batch numbered from `from`, returns the CPU line of its process. */
type Side = { name: string; run: (from: number) => Promise<{ usPerUnit: number; line: string }> };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Calls per command name from INFO commandstats. */
async function commandStats(redis: RedisClient): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** The commands run between two INFO commandstats readings, an email (the producer's included, the same for both sides). */
function commandsPerUnit(before: Map<string, number>, after: Map<string, number>, units: number): string {
  const per = [...after]
    .map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / units] as const)
    .filter(([k, v]) => v >= 0.05 && k !== 'info')
    .sort((a, b) => b[1] - a[1]);
  const total = per.reduce((s, [, v]) => s + v, 0);
  return `${total.toFixed(2)} (${per.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`;
}

/** Warms both sides up, then measures PAIRS pairs, the order turned each pair; prints and returns the ratios ours/floor. */
async function pairs(what: string, ours: Side, floor: Side, unit: string): Promise<number[]> {
  let from = 0;
  await ours.run(from);
  await floor.run(from);
  from += BATCH;
  const ratios: number[] = [];
  for (let k = 1; k <= PAIRS; k++) {
    const order = k % 2 === 1 ? [ours, floor] : [floor, ours];
    const got = new Map<string, { usPerUnit: number; line: string }>();
    for (const side of order) got.set(side.name, await side.run(from));
    from += BATCH;
    const o = got.get(ours.name)!;
    const f = got.get(floor.name)!;
    ratios.push(o.usPerUnit / f.usPerUnit);
    say(`${what} pair ${k}: ${ours.name} ${o.line}`);
    say(`${what} pair ${k}: ${floor.name} ${f.line}`);
    say(
      `RESULT ${what} pair ${k}: ${o.usPerUnit.toFixed(0)} / ${f.usPerUnit.toFixed(0)} µs ${unit} = ${(o.usPerUnit / f.usPerUnit).toFixed(2)}×`,
    );
  }
  return ratios;
}

/** Our API on a queue nobody consumes, against floor (a). */
async function apiPairs(env: Record<string, string>): Promise<number[]> {
  const children: ChildProcess[] = [];
  const redis = createRedis(env.REDIS_URL!, 'client');
  try {
    const apiPort = await getFreePort();
    const api = await startNode('api', 'apps/api/src/main.ts', { ...env, PORT: String(apiPort) }, /api listening/);
    children.push(api);
    const floorPort = await getFreePort();
    const floor = await startNode(
      'enqueue-floor',
      'bench/floors/enqueue-floor.main.ts',
      { PORT: String(floorPort), REDIS_URL: env.REDIS_URL, QUEUE_PREFIX: `{pairs-floor-a-${Date.now().toString(36)}}` },
      /floor listening/,
    );
    children.push(floor);
    const ws = (await (
      await fetch(`http://127.0.0.1:${apiPort}/v1/workspaces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Pairs' }),
      })
    ).json()) as { keys: { send: string } };
    const side = (name: string, pid: number, port: number, key: string): Side => ({
      name,
      async run(from) {
        const meter = cpuMeter({ [name]: pid }, { postgres: false });
        const { rejected } = await postEmails(`http://127.0.0.1:${port}`, key, BATCH, CONCURRENCY, (i) => invoice(from + i));
        if (rejected) throw new Error(`${name} rejected ${rejected} requests`);
        return meter.measure(BATCH, 'request');
      },
    });
    return await pairs(
      'API',
      side('API', api.pid!, apiPort, ws.keys.send),
      side('floor (a)', floor.pid!, floorPort, 'unused'),
      'a request',
    );
  } finally {
    for (const c of children) await stop(c);
    // Every job of both queues stays queued; the bench's Redis goes away with it.
    redis.disconnect();
  }
}

/** Our worker (send, log, marks) against floor (b), each fed by the producer from this process. */
async function workerPairs(
  env: Record<string, string>,
  mongoUri: string,
  sinkPort: number,
  servers: Record<string, number | undefined>,
): Promise<number[]> {
  const children: ChildProcess[] = [];
  const connection = createRedis(env.REDIS_URL!, 'client');
  const queues: SendEmailQueue[] = [];
  const client = await MongoClient.connect(mongoUri);
  try {
    const worker = await startNode('worker', 'apps/worker/src/main.ts', env, /worker ready/);
    children.push(worker);
    const floorPrefix = `{pairs-floor-b-${Date.now().toString(36)}}`;
    const floor = await startNode(
      'worker-floor',
      'bench/floors/worker-floor.main.ts',
      { REDIS_URL: env.REDIS_URL, QUEUE_PREFIX: floorPrefix, SMTP_PORT: String(sinkPort) },
      /floor ready/,
      FLOOR_V8,
    );
    say(`V8 options: worker ${WORKER_V8_OPTIONS.join(' ') || '(defaults)'}, floor (b) ${FLOOR_V8.join(' ') || '(defaults)'}`);
    children.push(floor);
    const created = await createWorkspaceRepository(client.db('bench_pairs')).create('Pairs');
    const side = (name: string, pid: number, prefix: string, workspaceId: string): Side => {
      const queue = createSendEmailQueue(connection, prefix, 5, 30_000);
      queues.push(queue);
      const producer = createEmailProducer(queue, { maxAttachmentsBytes: 10 * 1024 * 1024 });
      let sent = 0;
      return {
        name,
        async run(from) {
          const meter = cpuMeter({ [name]: pid }, { postgres: false });
          const around = OTHERS ? cpuMeter(servers, { postgres: true }) : null;
          const before = await commandStats(connection);
          for (let i = 0; i < BATCH; i += CHUNK) {
            await producer.sendMany(
              workspaceId,
              Array.from({ length: Math.min(CHUNK, BATCH - i) }, (_, j) => invoice(from + i + j)),
            );
          }
          sent += BATCH;
          // A job of ours completes once its entry is written.
          while ((await queue.getCompletedCount()) + (await queue.getFailedCount()) < sent) await sleep(20);
          const failed = await queue.getFailedCount();
          if (failed) throw new Error(`${name} failed ${failed} jobs`);
          const m = meter.measure(BATCH, 'email');
          const others = around ? `; servers ${around.report(BATCH, 'email')}` : '';
          return { ...m, line: `${m.line}; Redis an email ${commandsPerUnit(before, await commandStats(connection), BATCH)}${others}` };
        },
      };
    };
    return await pairs(
      'worker',
      side('worker', worker.pid!, env.QUEUE_PREFIX!, created.workspace._id),
      side('floor (b)', floor.pid!, floorPrefix, 'ws_floor'),
      'an email',
    );
  } finally {
    for (const c of children) await stop(c);
    for (const q of queues) await q.close();
    connection.disconnect();
    await client.close();
  }
}

async function main() {
  const redis = await startRedis();
  const mongo = await startFerretdb();
  const sinkPort = await getFreePort();
  let sink: ChildProcess | null = null;
  try {
    sink = await startNode('smtp-sink', 'infra/dev/smtp-sink.main.ts', { SMTP_SINK_PORT: String(sinkPort) }, /listening/);
    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      MONGODB_URI: `${mongo.uri.replace(/\/?$/, '/')}bench_pairs`,
      OPERATOR_TOKEN,
      SECRETS_KEY: 'bench-secrets-key-0123456789abcdef',
      MANAGED_SMTP_URL: `smtp://127.0.0.1:${sinkPort}`,
      MANAGED_FROM: 'Mailroom <bench@mailroom.test>',
      SMTP_IGNORE_TLS: 'true',
      // The limiter stays on (its Redis round trip is part of a request), above what the pairs send.
      RATE_LIMIT_SEND_PER_MINUTE: '10000000',
      QUEUE_PREFIX: `{pairs-${Date.now().toString(36)}}`,
    };
    say(`servers: redis ${redis.url}, mongo ${mongo.uri} (FerretDB 2 + DocumentDB), smtp sink :${sinkPort}; ${PAIRS} pairs of ${BATCH}`);
    const fmt = (xs: number[]) =>
      xs.length
        ? `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}× (median ${median(xs).toFixed(2)}×, ${xs.length} pairs)`
        : 'n/a';
    const api = ONLY === 'worker' ? [] : await apiPairs(env);
    const worker =
      ONLY === 'api'
        ? []
        : await workerPairs({ ...env, QUEUE_PREFIX: `${env.QUEUE_PREFIX}-w` }, mongo.uri, sinkPort, {
            redis: redis.pid,
            ferretdb: mongo.pid,
            sink: sink.pid,
          });
    say(`RESULT pairs: API/floor (a) ${fmt(api)} (target ≤ 1.25×), worker/floor (b) ${fmt(worker)} (target ≤ 1.3×)`);
  } finally {
    if (sink) await stop(sink);
    await mongo.stop();
    await redis.stop();
  }
}

runBench(main);
