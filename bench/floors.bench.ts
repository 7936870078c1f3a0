/**
 * Floors: what the parts every email and every delivery event must go through cost on this
 * machine, each measured alone, nothing else running, in CPU of every process involved (this
 * one, the SMTP sink, Redis, FerretDB and its PostgreSQL). Their sum bounds what end to end can
 * reach on two cores, however little the worker adds on top:
 *   - an email is a queue job, an SMTP send and a log entry written;
 *   - a delivery event is a queue job (job id = the provider's event id) and its share of the
 *     entry's read and version-guarded write (--per-entry events an entry, 4 as in
 *     bench/webhooks.bench.ts).
 * Each part is the cheapest form of itself: a job with a no-op processor, pooled nodemailer into
 * the sink, one insertMany of log-sized documents, one findOne and one updateOne by `_id` on the
 * entries' partition with its production indexes.
 *
 * Then the two process floors (bench/floors/process-floors.ts), in CPU of their own process only:
 * (a) the HTTP enqueue floor (Express 5 + express.json() + zod + one BullMQ add, a request) and
 * (b) the worker floor (a BullMQ job doing one pooled nodemailer send into the sink, an email),
 * the yardsticks of the API's and the worker's CPU in bench/throughput.bench.ts.
 *
 *   pnpm exec tsx bench/floors.bench.ts [--jobs=10000] [--emails=3000]
 *     [--docs=10000] [--entries=3000] [--per-entry=4]
 */
import { Queue, Worker } from 'bullmq';
import { MongoClient } from 'mongodb';
import { createEmailLogRepository, createRedis, EMAIL_LOGS, newId, type RedisClient } from '@mailroom/shared';
import { logEntry } from '../tests/support/log-entry';
import { startFerretdb } from '../infra/dev/ferretdb';
import { getFreePort } from '../infra/dev/process';
import { startRedis } from '../infra/dev/redis';
import { arg, cpuMeter, runBench, say, startNode, stop } from './bench-kit';
import { logCeiling, smtpCeiling } from './ceilings';
import { enqueueFloor, workerFloor } from './floors/process-floors';

const JOBS = Number(arg('jobs', '10000'));
const EMAILS = Number(arg('emails', '3000'));
const DOCS = Number(arg('docs', '10000'));
const ENTRIES = Number(arg('entries', '3000'));
const PER_ENTRY = Number(arg('per-entry', '4'));
/** Reads and writes in flight at once, as the delivery-event worker runs them. */
const DB_CONCURRENCY = 16;
const CORES = 2;

/** µs of CPU a unit, all processes involved. */
type Part = { usPerUnit: number };

/**
 * `run(n)` once on a third of the units (warming up the code paths), then on `n` under a CPU
 * meter; prints units/s and the CPU line, returns µs of CPU a unit.
 */
async function measure(
  name: string,
  [unit, units]: [string, string],
  n: number,
  pids: Record<string, number | undefined>,
  run: (n: number) => Promise<unknown>,
): Promise<Part> {
  await run(Math.ceil(n / 3));
  const meter = cpuMeter({ bench: process.pid, ...pids }, { postgres: true });
  const t0 = performance.now();
  await run(n);
  const seconds = (performance.now() - t0) / 1000;
  const { line, usPerUnit } = meter.measure(n, unit);
  say(`${name}: ${(n / seconds).toFixed(0)} ${units}/s; ${line}`);
  return { usPerUnit };
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** `n` jobs through a queue of their own: added in bulk, run by a no-op processor. */
async function queueJobs(connection: RedisClient, n: number): Promise<void> {
  const prefix = `{floors-${Date.now().toString(36)}}`;
  const queue = new Queue('floor', { connection, prefix, defaultJobOptions: { removeOnComplete: { count: 50_000 } } });
  let done = 0;
  const worker = new Worker('floor', async () => undefined, { connection, prefix, concurrency: 100 });
  const finished = new Promise<void>((resolve) => worker.on('completed', () => ++done === n && resolve()));
  for (let i = 0; i < n; i += 200)
    await queue.addBulk(
      Array.from({ length: Math.min(200, n - i) }, (_, k) => ({
        name: 'event',
        data: { id: `ev_${i + k}`, type: 'opened' },
        opts: { jobId: `ev_${i + k}` },
      })),
    );
  await finished;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

/** What the delivery-event worker sets on an entry after PER_ENTRY events. */
function foldedEvents(id: string, sentAt: Date) {
  const at = (k: number) => new Date(sentAt.getTime() + 60_000 + k * 1000);
  return {
    status: 'clicked',
    deliveredAt: at(0),
    openedAt: at(1),
    opens: 1,
    clickedAt: at(2),
    clicks: 1,
    timeline: Array.from({ length: PER_ENTRY }, (_, k) => ({
      type: (['delivered', 'opened', 'clicked', 'opened'] as const)[k % 4],
      at: at(k),
      receivedAt: new Date(),
      provider: 'mailroom',
      changedStatus: k < 3,
    })),
    eventIds: Array.from({ length: PER_ENTRY }, (_, k) => `mailroom:${id}-${k}`),
    eventsVersion: 1,
    updatedAt: new Date(),
  };
}

async function main() {
  const [redis, mongo] = await Promise.all([startRedis(), startFerretdb()]);
  const sinkPort = await getFreePort();
  const sink = await startNode('smtp-sink', 'infra/dev/smtp-sink.main.ts', { SMTP_SINK_PORT: String(sinkPort) }, /listening/);
  const client = await MongoClient.connect(mongo.uri);
  const connection = createRedis(redis.url, 'worker');
  const servers = { redis: redis.pid, ferretdb: mongo.pid };
  try {
    say(`FerretDB 2 + DocumentDB, one part at a time, CPU of this process and of the servers it uses`);

    const job = await measure(
      'queue job (addBulk of 200, no-op processor, 100 at once)',
      ['job', 'jobs'],
      JOBS,
      { redis: redis.pid },
      (n) => queueJobs(connection, n),
    );
    const smtp = await measure(
      'SMTP send (pooled nodemailer, 5 connections → sink)',
      ['email', 'emails'],
      EMAILS,
      { 'smtp-sink': sink.pid },
      (n) => smtpCeiling(sinkPort, n, 64),
    );
    const insert = await measure('log entry insert (insertMany of 500 log-sized documents)', ['doc', 'docs'], DOCS, servers, (n) =>
      logCeiling(mongo.uri, n),
    );

    // Entries in their partition with the production indexes, as the delivery-event worker finds them.
    const logsDb = client.db(`floors_${Date.now().toString(36)}`);
    const sentAt = new Date(Date.now() - 3600_000);
    const ids = Array.from({ length: ENTRIES + Math.ceil(ENTRIES / 3) }, () => newId('em'));
    await createEmailLogRepository(logsDb).importEntries(ids.map((_id) => logEntry('ws_floor', { _id, sentAt })));
    const entries = () => {
      let next = 0;
      return (n: number) => ids.slice(next, (next += n));
    };
    const toRead = entries();
    const read = await measure('entry read (findOne by _id, 16 at once)', ['entry', 'entries'], ENTRIES, servers, (n) =>
      mapLimit(toRead(n), DB_CONCURRENCY, (_id) => logsDb.collection<{ _id: string }>(EMAIL_LOGS).findOne({ _id })),
    );
    const toWrite = entries();
    const write = await measure('entry write (updateOne by _id and version, 16 at once)', ['entry', 'entries'], ENTRIES, servers, (n) =>
      mapLimit(toWrite(n), DB_CONCURRENCY, (_id) =>
        logsDb.collection<{ _id: string }>(EMAIL_LOGS).updateOne({ _id, eventsVersion: 0 }, { $set: foldedEvents(_id, sentAt) }),
      ),
    );
    await logsDb.dropDatabase();

    const send = (i: number) => ({
      to: `delivered+${i}@simulator.mailroom.test`,
      type: 'invoice' as const,
      subject: `Invoice ${i}`,
      html: `<p>Invoice ${i} is ready.</p>`,
      reference: { kind: 'invoice', id: `inv_${i}` },
    });
    const fa = await enqueueFloor(redis.url, EMAILS, 64, send);
    say(
      `floor (a) HTTP enqueue (Express 5 + express.json() + zod + one BullMQ add, 64 clients): ${fa.rate.toFixed(0)} requests/s; ${fa.line}`,
    );
    const fb = await workerFloor(redis.url, sinkPort, EMAILS, 200, send);
    say(`floor (b) worker (BullMQ job + one pooled nodemailer send → sink, concurrency 200): ${fb.rate.toFixed(0)} emails/s; ${fb.line}`);

    const emailFloor = job.usPerUnit + smtp.usPerUnit + insert.usPerUnit;
    const eventFloor = job.usPerUnit + (read.usPerUnit + write.usPerUnit) / PER_ENTRY;
    const eventFloorNoRead = job.usPerUnit + write.usPerUnit / PER_ENTRY;
    const max = (us: number) => ((CORES * 1e6) / us).toFixed(0);
    say(
      `RESULT email floor = job ${job.usPerUnit.toFixed(0)} + SMTP ${smtp.usPerUnit.toFixed(0)} + insert ${insert.usPerUnit.toFixed(0)} = ${emailFloor.toFixed(0)} µs of CPU → at most ${max(emailFloor)} emails/s on ${CORES} cores`,
    );
    say(
      `RESULT process floors: (a) HTTP enqueue ${fa.usPerUnit.toFixed(0)} µs of the process's CPU a request, (b) worker ${fb.usPerUnit.toFixed(0)} µs an email (client side)`,
    );
    say(
      `RESULT event floor (${PER_ENTRY} an entry) = job ${job.usPerUnit.toFixed(0)} + (read ${read.usPerUnit.toFixed(0)} + write ${write.usPerUnit.toFixed(0)}) / ${PER_ENTRY} = ${eventFloor.toFixed(0)} µs → at most ${max(eventFloor)} events/s; without the read ${eventFloorNoRead.toFixed(0)} µs → ${max(eventFloorNoRead)} events/s`,
    );
  } finally {
    connection.disconnect();
    await client.close();
    await stop(sink);
    await Promise.all([redis.stop(), mongo.stop()]);
  }
}

runBench(main);
