/**
 * End-to-end throughput, measured in one run on this machine against its two ceilings:
 *   1. SMTP leg: nodemailer's pooled transport straight into the SMTP sink (its own process);
 *   2. log leg: raw inserts of log-sized documents into the logs database;
 *   3. end to end: enqueue → queue → worker → SMTP sink → log entry written, enqueueing either
 *      through POST /v1/emails (`api`: 64 concurrent HTTP clients) or through the producer
 *      library's sendMany from this process (`library`: chunks of --chunk, no API process).
 * Prints emails/s for each, end to end as a ratio of min(ceilings), p50/p95 from enqueue to
 * entry, and the worker's peak RSS. `--via=both` runs the API leg, then the library leg, each
 * with its own worker, queue prefix and databases, so their counts do not mix.
 *
 * Each round also measures the two process floors (bench/floors/process-floors.ts), fed the
 * same way, and prints the API's CPU a request and the worker's CPU an email as ratios to them:
 * (a) a bare Express 5 + express.json() + zod + one BullMQ add, (b) a BullMQ job doing one pooled
 * nodemailer send. `--rounds=N` repeats floors and legs N times, alternating which goes first.
 * The API's ratio is of its CPU measured as floor (a)'s is, alone (see apiAlone); the API's CPU
 * during the end-to-end leg, beside the worker, is printed too.
 *
 *   pnpm exec tsx bench/throughput.bench.ts [--emails=5000] [--concurrency=64] [--rounds=1]
 *     [--via=api|library|both] [--chunk=200] [--workers=1] [--pin] [--mongo-uri=…] [--redis-url=…]
 */
import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { MongoClient } from 'mongodb';
import {
  createEmailProducer,
  createOutbox,
  EMAIL_LOGS,
  createRedis,
  createSendEmailQueue,
  createWorkspaceRepository,
  loadConfig,
  QUEUES,
} from '@mailroom/shared';
import { arg, cpuMeter, invoice, pct, pinTo, postEmails, rssMb, runBench, say, sleep, startNode, stop } from './bench-kit';
import { logCeiling, smtpCeiling } from './ceilings';
import { enqueueFloor, workerFloor } from './floors/process-floors';
import { startFerretdb } from '../infra/dev/ferretdb';
import { getFreePort } from '../infra/dev/process';
import { startRedis } from '../infra/dev/redis';

const EMAILS = Number(arg('emails', '5000'));
const CONCURRENCY = Number(arg('concurrency', '64'));
const CHUNK = Number(arg('chunk', '200'));
/** Worker processes sharing the queue (a deployment's worker replicas); each has its own RSS. */
const WORKERS = Number(arg('workers', '1'));
const VIA = arg('via', 'both');
const ROUNDS = Number(arg('rounds', '1'));
if (!['api', 'library', 'both'].includes(VIA)) throw new Error(`--via must be api, library or both, not ${VIA}`);
const OPERATOR_TOKEN = 'bench-operator-token-0123456789';
/** `--cpu-prof=DIR`: the worker, the API and the floors write V8 CPU profiles there when they exit (open them in Chrome's DevTools). */
const CPU_PROF = arg('cpu-prof', '');

/** Node flags that make a process write its CPU profiles (one a thread) into a folder of its own under --cpu-prof's. */
const profile = (name: string) => (CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}/${name}-${Date.now()}`] : []);

/**
 * `--pin`: the process measured (the API in the API leg, the worker in the library leg, each
 * floor) is bound to CPU 1 and everything else (this bench, Redis, the sink, FerretDB,
 * PostgreSQL, the worker of the API leg) to CPU 0, so the process measured and its floor each
 * have a core to themselves and are not preempted by the servers around them.
 */
const PIN = process.argv.includes('--pin');
const MEASURED_CPU = PIN ? '1' : undefined;

function child(
  name: string,
  entry: string,
  env: Record<string, string | undefined>,
  readyLine: RegExp,
  cpus?: string,
): Promise<ChildProcess> {
  return startNode(name, entry, env, readyLine, name === 'worker' || name === 'api' ? profile(name) : [], cpus);
}

/** `servers`: the sink's and the databases' pids (when we started them), for the CPU line. */
type Setup = {
  redisUrl: string;
  mongoUri: string;
  sinkPort: number;
  servers: Record<string, number>;
  /** FerretDB we started on PostgreSQL: its backend's CPU counts too. */
  postgres: boolean;
  smtp: number;
  logs: number;
};

/** What one leg measured: emails/s, and the CPU of the API (a request) and of the worker (an email). */
type Leg = { e2e: number; apiUs: number | null; workerUs: number };

/**
 * The API's CPU a request measured as floor (a) is: an API process of its own enqueueing into a
 * queue nothing consumes (a prefix of its own), with the bench's clients and Redis the only other
 * work on the machine. In the end-to-end leg the worker, the sink and the logs database run
 * beside the API and take the other core, which makes each of its requests costlier (measured:
 * user CPU a request up to 1.5× the same API's alone) though the API's code is the same.
 */
async function apiAlone(env: Record<string, string>, key: string): Promise<{ usPerUnit: number; line: string }> {
  const port = await getFreePort();
  const prefix = `{bench-api-alone-${Date.now().toString(36)}}`;
  const api = await child(
    'api',
    'apps/api/src/main.ts',
    { ...env, PORT: String(port), QUEUE_PREFIX: prefix },
    /api listening/,
    MEASURED_CPU,
  );
  try {
    const meter = cpuMeter({ api: api.pid }, { postgres: false });
    const { rejected } = await postEmails(`http://127.0.0.1:${port}`, key, EMAILS, CONCURRENCY, invoice);
    if (rejected) throw new Error(`the API alone rejected ${rejected} requests`);
    return meter.measure(EMAILS, 'request');
  } finally {
    await stop(api);
    const redis = createRedis(env.REDIS_URL!, 'client');
    await new Queue(QUEUES.sendEmail, { connection: redis, prefix }).obliterate({ force: true }).catch(() => undefined);
    redis.disconnect();
  }
}

/** One end-to-end leg in a namespace of its own. */
async function endToEnd(via: 'api' | 'library', s: Setup): Promise<Leg> {
  const mainDb = `bench_${via}`;
  const env = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    PORT: String(await getFreePort()),
    HOST: '127.0.0.1',
    REDIS_URL: s.redisUrl,
    MONGODB_URI: `${s.mongoUri.replace(/\/?$/, '/')}${mainDb}`,
    OPERATOR_TOKEN,
    SECRETS_KEY: 'bench-secrets-key-0123456789abcdef',
    MANAGED_SMTP_URL: `smtp://127.0.0.1:${s.sinkPort}`,
    MANAGED_FROM: 'Mailroom <bench@mailroom.test>',
    SMTP_IGNORE_TLS: 'true',
    // Unique per run, so a reused --redis-url holds no jobs of an earlier run under it.
    QUEUE_PREFIX: `{bench-${via}-${Date.now().toString(36)}}`,
  };
  const config = loadConfig(env);
  const client = await MongoClient.connect(s.mongoUri);
  // A reused --mongo-uri may hold an earlier run's entries.
  await client.db(mainDb).dropDatabase();
  await client.db(config.logsMongo.db).dropDatabase();
  const children: ChildProcess[] = [];
  try {
    const api = via === 'api' ? await child('api', 'apps/api/src/main.ts', env, /api listening/, MEASURED_CPU) : null;
    if (api) children.push(api);
    const workers = await Promise.all(
      Array.from({ length: WORKERS }, () =>
        child('worker', 'apps/worker/src/main.ts', env, /worker ready/, via === 'library' ? MEASURED_CPU : undefined),
      ),
    );
    children.push(...workers);
    const base = `http://127.0.0.1:${env.PORT}`;
    // The API leg sends with a key; the library leg passes the workspace id, as trusted code does.
    const ws = api
      ? ((await (
          await fetch(`${base}/v1/workspaces`, {
            method: 'POST',
            headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ name: 'Bench' }),
          })
        ).json()) as { id: string; keys: { send: string } })
      : await createWorkspaceRepository(client.db(mainDb))
          .create('Bench')
          .then((r) => ({ id: r.workspace._id, keys: r.keys }));
    // Before the end-to-end run, so its meters see none of it.
    let apiUs: number | null = null;
    if (api) {
      const alone = await apiAlone(env, ws.keys.send);
      apiUs = alone.usPerUnit;
      say(`API alone (as floor (a) is measured): ${alone.line}`);
    }
    // The library leg's producer runs in this process: its CPU is the enqueueing side's.
    const cpu = cpuMeter(
      {
        ...(api ? { api: api.pid } : { 'bench (producer)': process.pid }),
        ...Object.fromEntries(workers.map((w, i) => [WORKERS === 1 ? 'worker' : `worker ${i + 1}`, w.pid])),
        ...s.servers,
      },
      { postgres: s.postgres },
    );
    // The worker's CPU an email over the whole leg.
    const workerCpu = cpuMeter(Object.fromEntries(workers.map((w, i) => [`worker ${i + 1}`, w.pid])), { postgres: false });
    // The largest of the workers' RSS (each is its own process with its own limit).
    const workerRss = () => Math.max(...workers.map((w) => rssMb(w.pid!)).filter((x) => !Number.isNaN(x)));
    let peakRss = workerRss();
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, workerRss());
    }, 100);
    const started = Date.now();
    let rejected = 0;
    if (api) {
      const apiCpu = cpuMeter({ api: api.pid }, { postgres: false });
      ({ rejected } = await postEmails(base, ws.keys.send, EMAILS, CONCURRENCY, invoice));
      say(`API while the worker consumes (end to end): ${apiCpu.report(EMAILS, 'request')}`);
    } else {
      // Built as the API builds its send queue, from the same configuration as the worker's.
      const connection = createRedis(config.redisUrl, 'client');
      const queue = createSendEmailQueue(connection, config.queuePrefix, config.send.attempts, config.send.backoffMs);
      const producer = createEmailProducer(queue, { maxAttachmentsBytes: config.send.maxAttachmentsBytes });
      for (let i = 0; i < EMAILS; i += CHUNK) {
        await producer.sendMany(
          ws.id,
          Array.from({ length: Math.min(CHUNK, EMAILS - i) }, (_, j) => invoice(i + j)),
        );
      }
      await queue.close();
      connection.disconnect();
    }
    const enqueuedMs = Date.now() - started;
    const how = api ? 'over HTTP' : `through the producer (sendMany, chunks of ${CHUNK})`;
    const rate = ((EMAILS / enqueuedMs) * 1000).toFixed(0);
    say(`enqueued ${EMAILS} in ${(enqueuedMs / 1000).toFixed(1)} s ${how} (${rate}/s), ${rejected} rejected`);

    // Wait on Redis (a job completes once its entry is written), not on the database: polling a
    // count on FerretDB 1.x scans the collection and would take the CPU the pipeline needs.
    const queue = new Queue('send-email', { connection: { url: s.redisUrl }, prefix: config.queuePrefix });
    const deadline = Date.now() + 10 * 60_000;
    const redis = createRedis(s.redisUrl, 'client');
    const outbox = createOutbox(redis, config.queuePrefix);
    const finished = async () =>
      (await queue.getCompletedCount()) + (await queue.getFailedCount()) >= EMAILS && (await outbox.size()) === 0;
    while (Date.now() < deadline && !(await finished())) await sleep(100);
    redis.disconnect();
    await queue.close();
    clearInterval(sampler);
    type Entry = { _id: string; createdAt: Date; updatedAt: Date; status: string };
    const docs = await client
      .db(config.logsMongo.db)
      .collection<Entry>(EMAIL_LOGS)
      .find({}, { projection: { createdAt: 1, updatedAt: 1, status: 1 } })
      .toArray();
    const done = docs.filter((d) => d.status === 'sent').length;
    say(`CPU used during the end-to-end run: ${cpu.report(EMAILS, 'email')} (wall ${((Date.now() - started) / 1000).toFixed(1)}s)`);
    const wm = workerCpu.measure(EMAILS, 'email');
    const workerUs = wm.usPerUnit;
    if (WORKERS === 1) say(`worker: ${wm.line}`);
    say(`${apiUs === null ? '' : `API ${apiUs.toFixed(0)} µs of CPU a request, `}worker ${workerUs.toFixed(0)} µs of CPU an email`);
    const lastWrite = Math.max(...docs.map((d) => d.updatedAt.getTime()));
    const e2e = done / ((lastWrite - started) / 1000);
    const lat = docs.map((d) => d.updatedAt.getTime() - d.createdAt.getTime());
    const ceiling = Math.min(s.smtp, s.logs);
    say(`end to end${api ? '' : ' (library)'}: ${done}/${EMAILS} entries written, ${e2e.toFixed(0)} emails/s`);
    say(`latency enqueue → entry: p50 ${pct(lat, 50).toFixed(0)} ms, p95 ${pct(lat, 95).toFixed(0)} ms`);
    say(`worker peak RSS: ${peakRss.toFixed(0)} MB${WORKERS > 1 ? ` (the largest of ${WORKERS} worker processes)` : ''}`);
    say(
      `RESULT${api ? '' : ' via=library'} e2e=${e2e.toFixed(0)}/s smtp_ceiling=${s.smtp.toFixed(0)}/s log_ceiling=${s.logs.toFixed(0)}/s ratio=${((e2e / ceiling) * 100).toFixed(0)}% of min(ceilings) p50=${pct(lat, 50).toFixed(0)}ms p95=${pct(lat, 95).toFixed(0)}ms worker_rss=${peakRss.toFixed(0)}MB`,
    );
    return { e2e, apiUs, workerUs };
  } finally {
    for (const c of children) await stop(c);
    await client.close();
  }
}

async function main() {
  // Everything this bench starts inherits CPU 0; the processes measured move to CPU 1 once ready.
  if (PIN) pinTo(process.pid, '0');
  const redis = arg('redis-url', '') ? null : await startRedis();
  const redisUrl = arg('redis-url', '') || redis!.url;
  // PostgreSQL: a scratch database, tuned as every FerretDB-on-PostgreSQL of ours, dropped at stop().
  const mongo = arg('mongo-uri', '') ? null : await startFerretdb();
  const mongoUri = arg('mongo-uri', '') || mongo!.uri;
  const sinkPort = await getFreePort();
  let sink: ChildProcess | null = null;
  try {
    sink = await child('smtp-sink', 'infra/dev/smtp-sink.main.ts', { SMTP_SINK_PORT: String(sinkPort) }, /listening/);
    say(`servers: redis ${redisUrl}, mongo ${mongoUri} (${mongo ? 'FerretDB 2 + DocumentDB' : 'given'}), smtp sink :${sinkPort}`);

    const smtp = await smtpCeiling(sinkPort, Math.min(EMAILS, 3000), CONCURRENCY);
    say(`ceiling, SMTP leg (pooled nodemailer → sink, 5 connections): ${smtp.toFixed(0)} emails/s`);
    const logs = await logCeiling(mongoUri, Math.min(EMAILS, 20_000));
    say(`ceiling, log leg (insertMany of log-sized documents): ${logs.toFixed(0)} docs/s`);

    const servers: Record<string, number> = {
      'smtp-sink': sink.pid!,
      ...(mongo?.pid ? { ferretdb: mongo.pid } : {}),
      ...(redis?.pid ? { redis: redis.pid } : {}),
    };
    const setup: Setup = { redisUrl, mongoUri, sinkPort, servers, postgres: mongo !== null, smtp, logs };
    const ratios: Array<{ api: number | null; workerApi: number | null; workerLibrary: number | null }> = [];
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const fmt = (xs: number[]) =>
      xs.length ? `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}× (median ${median(xs).toFixed(2)}×)` : 'n/a';
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which side goes first, so a machine that gets busier or quieter favours neither.
      const floorsFirst = round % 2 === 1;
      let fa: Awaited<ReturnType<typeof enqueueFloor>> | null = null;
      let fb: Awaited<ReturnType<typeof workerFloor>> | null = null;
      const floors = async () => {
        fa = VIA !== 'library' ? await enqueueFloor(redisUrl, EMAILS, CONCURRENCY, invoice, profile('enqueue-floor'), MEASURED_CPU) : null;
        if (fa)
          say(`floor (a) HTTP enqueue (Express 5 + express.json() + zod + one BullMQ add): ${fa.rate.toFixed(0)} requests/s; ${fa.line}`);
        fb = await workerFloor(redisUrl, sinkPort, EMAILS, CHUNK, invoice, profile('worker-floor'), MEASURED_CPU);
        say(`floor (b) worker (BullMQ job + one pooled nodemailer send → sink): ${fb.rate.toFixed(0)} emails/s; ${fb.line}`);
      };
      let viaApi: Leg | null = null;
      let viaLibrary: Leg | null = null;
      const legs = async () => {
        viaApi = VIA !== 'library' ? await endToEnd('api', setup) : null;
        viaLibrary = VIA !== 'api' ? await endToEnd('library', setup) : null;
      };
      say(`round ${round} of ${ROUNDS}: ${floorsFirst ? 'floors, then the legs' : 'the legs, then floors'}`);
      if (floorsFirst) {
        await floors();
        await legs();
      } else {
        await legs();
        await floors();
      }
      const a = fa as Awaited<ReturnType<typeof enqueueFloor>> | null;
      const b = fb as unknown as Awaited<ReturnType<typeof workerFloor>>;
      const api = viaApi as Leg | null;
      const lib = viaLibrary as Leg | null;
      const r = {
        api: api && a && api.apiUs !== null ? api.apiUs / a.usPerUnit : null,
        workerApi: api ? api.workerUs / b.usPerUnit : null,
        workerLibrary: lib ? lib.workerUs / b.usPerUnit : null,
      };
      ratios.push(r);
      say(
        `RESULT round ${round} floors: (a) ${a ? `${a.usPerUnit.toFixed(0)} µs a request` : 'n/a'}, (b) ${b.usPerUnit.toFixed(0)} µs an email; ` +
          (api
            ? `API ${api.apiUs!.toFixed(0)} µs a request = ${r.api!.toFixed(2)}× floor (a) (target ≤ 1.25×), worker ${api.workerUs.toFixed(0)} µs an email = ${r.workerApi!.toFixed(2)}× floor (b) (API leg); `
            : '') +
          (lib
            ? `worker ${lib.workerUs.toFixed(0)} µs an email = ${r.workerLibrary!.toFixed(2)}× floor (b) (library leg; target ≤ 1.3×)`
            : ''),
      );
      if (api && lib) {
        const ceiling = Math.min(smtp, logs);
        say(
          `RESULT via=both api=${api.e2e.toFixed(0)}/s (${((api.e2e / ceiling) * 100).toFixed(0)}% of min(ceilings)) library=${lib.e2e.toFixed(0)}/s (${((lib.e2e / ceiling) * 100).toFixed(0)}% of min(ceilings)) library/api=${(lib.e2e / api.e2e).toFixed(2)}`,
        );
      }
    }
    const pick = (k: keyof (typeof ratios)[number]) => ratios.flatMap((r) => (r[k] === null ? [] : [r[k]!]));
    say(
      `RESULT ratios over ${ROUNDS} round(s): API/floor (a) ${fmt(pick('api'))}, worker/floor (b) ${fmt(pick('workerApi'))} (API leg), ${fmt(pick('workerLibrary'))} (library leg)`,
    );
  } finally {
    if (sink) await stop(sink);
    await mongo?.stop();
    await redis?.stop();
  }
}

runBench(main);
