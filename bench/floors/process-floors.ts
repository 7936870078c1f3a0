/**
 * The two process floors, each measured in a process of its own and in that process's CPU only,
 * fed as bench/throughput.bench.ts feeds the API and the worker:
 *   (a) HTTP enqueue floor (enqueue-floor.main.ts): `POST /v1/emails` from CONCURRENCY clients;
 *   (b) worker floor (worker-floor.main.ts): jobs of the producer's shape, sendMany chunks of
 *       200, each sent once through a pooled nodemailer transport into the SMTP sink.
 */
import { Queue } from 'bullmq';
import { createEmailProducer, createRedis, createSendEmailQueue, QUEUES, type SendEmailInput } from '@mailroom/shared';
import { getFreePort } from '../../infra/dev/process';
import { cpuMeter, postEmails, sleep, startNode, stop } from '../bench-kit';

export interface FloorResult {
  /** µs of CPU of the floor's process a unit (request or email). */
  usPerUnit: number;
  rate: number;
  line: string;
}

/** (a): `n` requests with `body(i)` from `concurrency` clients into the bare Express app. */
export async function enqueueFloor(
  redisUrl: string,
  n: number,
  concurrency: number,
  body: (i: number) => unknown,
  nodeArgs: string[] = [],
  cpus?: string,
): Promise<FloorResult> {
  const port = await getFreePort();
  const prefix = `{floor-enqueue-${Date.now().toString(36)}}`;
  const app = await startNode(
    'enqueue-floor',
    'bench/floors/enqueue-floor.main.ts',
    { PORT: String(port), REDIS_URL: redisUrl, QUEUE_PREFIX: prefix },
    /floor listening/,
    nodeArgs,
    cpus,
  );
  try {
    const meter = cpuMeter({ 'enqueue floor': app.pid }, { postgres: false });
    const t0 = performance.now();
    const { rejected } = await postEmails(`http://127.0.0.1:${port}`, 'unused', n, concurrency, body);
    const seconds = (performance.now() - t0) / 1000;
    if (rejected) throw new Error(`enqueue floor rejected ${rejected} requests`);
    const { usPerUnit, line } = meter.measure(n, 'request');
    return { usPerUnit, rate: n / seconds, line };
  } finally {
    await stop(app);
    const redis = createRedis(redisUrl, 'client');
    await new Queue(QUEUES.sendEmail, { connection: redis, prefix }).obliterate({ force: true }).catch(() => undefined);
    redis.disconnect();
  }
}

/** (b): `n` emails queued by the producer in chunks of `chunk`, sent by the bare worker into the sink on `sinkPort`. */
export async function workerFloor(
  redisUrl: string,
  sinkPort: number,
  n: number,
  chunk: number,
  email: (i: number) => SendEmailInput,
  nodeArgs: string[] = [],
  cpus?: string,
): Promise<FloorResult> {
  const prefix = `{floor-worker-${Date.now().toString(36)}}`;
  const worker = await startNode(
    'worker-floor',
    'bench/floors/worker-floor.main.ts',
    { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, SMTP_PORT: String(sinkPort) },
    /floor ready/,
    nodeArgs,
    cpus,
  );
  const connection = createRedis(redisUrl, 'client');
  const queue = createSendEmailQueue(connection, prefix, 5, 30_000);
  try {
    const meter = cpuMeter({ 'worker floor': worker.pid }, { postgres: false });
    const t0 = performance.now();
    const producer = createEmailProducer(queue, { maxAttachmentsBytes: 10 * 1024 * 1024 });
    for (let i = 0; i < n; i += chunk) {
      await producer.sendMany(
        'ws_floor',
        Array.from({ length: Math.min(chunk, n - i) }, (_, j) => email(i + j)),
      );
    }
    while ((await queue.getCompletedCount()) + (await queue.getFailedCount()) < n) await sleep(50);
    const seconds = (performance.now() - t0) / 1000;
    const failed = await queue.getFailedCount();
    if (failed) throw new Error(`worker floor failed ${failed} jobs`);
    const { usPerUnit, line } = meter.measure(n, 'email');
    return { usPerUnit, rate: n / seconds, line };
  } finally {
    await stop(worker);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    connection.disconnect();
  }
}
