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
  /** Writes staged outcomes now (the timer does it every OUTBOX_FLUSH_INTERVAL_MS). */
  flushOutbox(): Promise<{ written: number; left: number }>;
}

/** Wires the worker process: connections, repositories, transports, the send worker and the outbox flusher. */
export async function startWorkerApp(config: Config, log: Logger): Promise<WorkerApp> {
  // BullMQ's connection (its scripts, job moves, locks) stays as BullMQ expects it.
  const redis = createRedis(config.redisUrl, 'worker');
  // Our own per-email keys (hand-off marks, outbox, version counters) on a second connection with
  // auto-pipelining: the commands the concurrent jobs issue in one event-loop turn leave in one
  // write instead of one each (about half a write an email instead of seven). Not on BullMQ's own
  // connection, where auto-pipelining is reported to misbehave. (On a Redis Cluster the option is
  // a node option here and has no effect: commands go out one by one, as before.)
  const data = createRedis(config.redisUrl, 'worker', { enableAutoPipelining: true, connectionName: 'mailroom-worker-data' });
  // ioredis reconnects by itself; log instead of letting it print unhandled errors.
  redis.on('error', (err) => log.warn({ err }, 'redis connection error'));
  data.on('error', (err) => log.warn({ err }, 'redis connection error'));
  const dbs = await connectDatabases(config, 'mailroom-worker');
  const logs = createEmailLogRepository(dbs.logs);
  await logs.ensureIndexes();
  const secretBox = createSecretBox(config.secretsKey);
  const settings = createEmailSettingsRepository(dbs.main, secretBox);
  const suppressions = createCachedSuppressionRepository(createSuppressionRepository(dbs.main), data, config.queuePrefix);
  await suppressions.ensureIndexes();
  const events = createEmailEventsRepository(dbs.logs, { machineWindowMs: config.tracking.machineOpenWindowSeconds * 1000 });
  await events.ensureIndexes();
  const outbox = createOutbox(data, config.queuePrefix);
  const transports = createTransportRegistry({ config, settings, redis: data, log });

  const worker = createSendEmailWorker({
    config,
    connection: redis,
    transports,
    logs,
    outbox,
    log,
    suppressions,
    tracking: {
      settings: createCachedTrackingSettings(createTrackingSettingsRepository(dbs.main), data, config.queuePrefix),
      tokens: createTrackingTokens(secretBox.deriveKey('tracking-v1')),
    },
    onLogsWriteFailed: (err) => log.warn({ err }, 'logs database unavailable; outcome kept in the outbox'),
  });
  worker.on('error', (err) => log.error({ err }, 'send worker error'));
  const eventWorker = createDeliveryEventWorker({ config, connection: redis, events, suppressions, log });
  eventWorker.on('error', (err) => log.error({ err }, 'delivery event worker error'));

  let flushing: Promise<{ written: number; left: number }> | null = null;
  const flushOutbox = () => {
    flushing ??= outbox.flush(logs).finally(() => {
      flushing = null;
    });
    return flushing;
  };
  const timer = setInterval(() => {
    if (flushing) return;
    flushOutbox()
      .then(({ written, left }) => {
        if (written || left) log.info({ written, left }, 'outbox flushed');
      })
      .catch((err) => log.warn({ err }, 'outbox flush failed'));
  }, config.send.outboxFlushIntervalMs);
  timer.unref();

  await worker.waitUntilReady();
  await eventWorker.waitUntilReady();
  log.info({ concurrency: config.send.concurrency, queuePrefix: config.queuePrefix }, 'worker ready');

  return {
    flushOutbox,
    async close() {
      clearInterval(timer);
      await worker.close();
      await eventWorker.close();
      await flushOutbox().catch((err) => log.warn({ err }, 'final outbox flush failed'));
      await transports.close();
      await redis.quit().catch(() => redis.disconnect());
      await data.quit().catch(() => data.disconnect());
      await dbs.close();
    },
  };
}
