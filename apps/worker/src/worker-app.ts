import {
  coalesceWrites,
  connectDatabases,
  createActivityRepository,
  createMetrics,
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
  startMetricsServer,
  withEventMessages,
  withOutcomeMessages,
  type Config,
  type Logger,
  type MetricsServer,
} from '@mailroom/shared';
import { createDeliveryEventWorker } from './delivery-event.worker';
import { countDeliveryEvents, countOutcome, startOutboundWebhooks } from './observability';
import { withHandoffTiming } from './transports/handoff-timing';
import { createSendEmailWorker } from './send-email.worker';
import { createTransportRegistry } from './transports/transport-registry';

export interface WorkerApp {
  /** Finishes active jobs, writes what the outbox still holds if it can, closes connections. */
  close(): Promise<void>;
  /** Writes staged outcomes now, whatever their age (the timer does it every OUTBOX_FLUSH_INTERVAL_MS). */
  flushOutbox(): Promise<{ written: number; left: number }>;
  /** Where `/metrics` is served (METRICS_PORT, default 9464); null if it could not listen. */
  metricsUrl: string | null;
}

/** The worker's `/metrics` port when METRICS_PORT is not set. */
export const WORKER_METRICS_PORT = 9464;

/** Wires the worker process: connections, repositories, transports, the send worker and the outbox flusher. */
export async function startWorkerApp(config: Config, log: Logger): Promise<WorkerApp> {
  // BullMQ's commands of the jobs that end in one turn of the event loop share one socket write.
  const redis = coalesceWrites(createRedis(config.redisUrl, 'worker'));
  // ioredis reconnects by itself; log instead of letting it print unhandled errors.
  redis.on('error', (err) => log.warn({ err }, 'redis connection error'));
  // Our own keys (outbox, hand-off marks, cache versions) on a second connection whose commands
  // of one turn of the event loop leave in one write; BullMQ keeps the first to itself.
  const own = coalesceWrites(createRedis(config.redisUrl, 'worker'));
  own.on('error', (err) => log.warn({ err }, 'redis connection error'));
  const dbs = await connectDatabases(config, 'mailroom-worker');
  const storedLogs = createEmailLogRepository(dbs.logs);
  await storedLogs.ensureIndexes();
  const secretBox = createSecretBox(config.secretsKey);
  const settings = createEmailSettingsRepository(dbs.main, secretBox);
  const suppressions = createCachedSuppressionRepository(createSuppressionRepository(dbs.main), own, config.queuePrefix);
  await suppressions.ensureIndexes();
  const outbox = createOutbox(own, config.queuePrefix);
  const metrics = createMetrics({ outboxSize: () => outbox.size() });
  const activity = createActivityRepository(dbs.logs);
  const webhooks = await startOutboundWebhooks({ config, redis, own, main: dbs.main, logs: dbs.logs, secretBox, activity, log, metrics });
  // Status changes enqueue their webhook messages in the step that applies them (status-change-messages.ts).
  const logs = withOutcomeMessages(storedLogs, webhooks.dispatcher, countOutcome(metrics));
  const machineWindowMs = config.tracking.machineOpenWindowSeconds * 1000;
  const events = withEventMessages(
    createEmailEventsRepository(dbs.logs, { machineWindowMs }),
    dbs.logs,
    webhooks.dispatcher,
    machineWindowMs,
  );
  await events.ensureIndexes();
  const transports = withHandoffTiming(createTransportRegistry({ config, settings, redis: own, log }), metrics.smtpHandoffSeconds);

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
  countDeliveryEvents(eventWorker, metrics);

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
  const metricsServer: MetricsServer | null = await startMetricsServer(
    metrics.registry,
    config.metrics.host,
    config.metrics.port ?? WORKER_METRICS_PORT,
    log,
  ).catch((err: unknown) => {
    log.error({ err }, 'metrics server could not listen; /metrics is not served');
    return null;
  });
  log.info({ concurrency: config.send.concurrency, queuePrefix: config.queuePrefix }, 'worker ready');

  return {
    flushOutbox: () => flushOutbox(),
    metricsUrl: metricsServer?.url ?? null,
    async close() {
      clearInterval(timer);
      await worker.close();
      await eventWorker.close();
      await flushOutbox().catch((err) => log.warn({ err }, 'final outbox flush failed'));
      await webhooks.close();
      await metricsServer?.close();
      await transports.close();
      await redis.quit().catch(() => redis.disconnect());
      await own.quit().catch(() => own.disconnect());
      await dbs.close();
    },
  };
}
