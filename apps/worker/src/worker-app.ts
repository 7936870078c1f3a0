import {
  connectDatabases,
  createCachedSuppressionRepository,
  createCachedTrackingSettings,
  createEmailEventsRepository,
  createEmailLogRepository,
  createEmailSettingsRepository,
  createOutbox,
  createRedis,
  createSecretBox,
  createSuppressionRepository,
  createTrackingSettingsRepository,
  createTrackingTokens,
  type Config,
  type Logger,
} from '@mailroom/shared';
import { createDeliveryEventWorker } from './delivery-event.worker';
import { createSendEmailWorker } from './send-email.worker';
import { createTransportRegistry } from './transports/transport-registry';

export interface WorkerApp {
  /** Finishes active jobs, writes what the outbox still holds if it can, closes connections. */
  close(): Promise<void>;
  /** Writes staged outcomes now, whatever their age (the timer does it every OUTBOX_FLUSH_INTERVAL_MS). */
  flushOutbox(): Promise<{ written: number; left: number }>;
}

/** Wires the worker process: connections, repositories, transports, the send worker and the outbox flusher. */
export async function startWorkerApp(config: Config, log: Logger): Promise<WorkerApp> {
  const redis = createRedis(config.redisUrl, 'worker');
  // ioredis reconnects by itself; log instead of letting it print unhandled errors.
  redis.on('error', (err) => log.warn({ err }, 'redis connection error'));
  // Our own keys (outbox, hand-off marks, cache versions) on a second connection that pipelines
  // the commands of concurrently running jobs into one write; BullMQ keeps the first to itself.
  const own = createRedis(config.redisUrl, 'worker', { enableAutoPipelining: true });
  own.on('error', (err) => log.warn({ err }, 'redis connection error'));
  const dbs = await connectDatabases(config, 'mailroom-worker');
  const logs = createEmailLogRepository(dbs.logs);
  await logs.ensureIndexes();
  const secretBox = createSecretBox(config.secretsKey);
  const settings = createEmailSettingsRepository(dbs.main, secretBox);
  const suppressions = createCachedSuppressionRepository(createSuppressionRepository(dbs.main), own, config.queuePrefix);
  await suppressions.ensureIndexes();
  const events = createEmailEventsRepository(dbs.logs, { machineWindowMs: config.tracking.machineOpenWindowSeconds * 1000 });
  await events.ensureIndexes();
  const outbox = createOutbox(own, config.queuePrefix);
  const transports = createTransportRegistry({ config, settings, redis: own, log });

  const worker = createSendEmailWorker({
    config,
    connection: redis,
    transports,
    logs,
    outbox,
    log,
    suppressions,
    tracking: {
      settings: createCachedTrackingSettings(createTrackingSettingsRepository(dbs.main), own, config.queuePrefix),
      tokens: createTrackingTokens(secretBox.deriveKey('tracking-v1')),
    },
    onLogsWriteFailed: (err) => log.warn({ err }, 'logs database unavailable; outcome kept in the outbox'),
  });
  worker.on('error', (err) => log.error({ err }, 'send worker error'));
  const eventWorker = createDeliveryEventWorker({ config, connection: redis, events, suppressions, log });
  eventWorker.on('error', (err) => log.error({ err }, 'delivery event worker error'));

  let flushing: Promise<{ written: number; left: number }> | null = null;
  // The timer leaves outcomes staged in the last few seconds to the jobs writing them.
  const minAgeMs = Math.max(5_000, 5 * config.send.outboxFlushIntervalMs);
  const flushOutbox = async (opts: { minAgeMs?: number } = {}) => {
    // One pass at a time; a caller that wants everything waits for the timer's pass to end.
    while (flushing) await flushing.catch(() => undefined);
    flushing = outbox.flush(logs, opts).finally(() => {
      flushing = null;
    });
    return flushing;
  };
  const timer = setInterval(() => {
    if (flushing) return;
    flushOutbox({ minAgeMs })
      .then(({ written, left }) => {
        // `left` alone is normal under load (outcomes younger than minAgeMs).
        if (written) log.info({ written, left }, 'outbox flushed');
      })
      .catch((err) => log.warn({ err }, 'outbox flush failed'));
  }, config.send.outboxFlushIntervalMs);
  timer.unref();

  await worker.waitUntilReady();
  await eventWorker.waitUntilReady();
  log.info({ concurrency: config.send.concurrency, queuePrefix: config.queuePrefix }, 'worker ready');

  return {
    flushOutbox: () => flushOutbox(),
    async close() {
      clearInterval(timer);
      await worker.close();
      await eventWorker.close();
      await flushOutbox().catch((err) => log.warn({ err }, 'final outbox flush failed'));
      await transports.close();
      await redis.quit().catch(() => redis.disconnect());
      await own.quit().catch(() => own.disconnect());
      await dbs.close();
    },
  };
}
