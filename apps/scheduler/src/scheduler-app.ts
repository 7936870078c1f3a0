import {
  connectDatabases,
  createActivityRepository,
  createDeliveryEventQueue,
  createEmailEventsRepository,
  createEmailLogRepository,
  createRedis,
  createRetentionQueue,
  createWebhookDeliveryRepository,
  RETENTION_SCHEDULER_ID,
  type Config,
  type Logger,
  type RetentionQueue,
} from '@mailroom/shared';
import { startOrphanAdoption, type OrphanAdoption } from './orphan-adoption';
import { startSchedulerMetrics } from './observability';
import { createRetentionWorker } from './retention.worker';

export interface SchedulerApp {
  queue: RetentionQueue;
  orphans: OrphanAdoption;
  /** Where `/metrics` is served (METRICS_PORT, default 9465); null if it could not listen. */
  metricsUrl: string | null;
  close(): Promise<void>;
}

/**
 * Registers the job schedulers and processes their jobs. Any number of scheduler processes
 * may run: they upsert the same scheduler id, and BullMQ keeps one job per tick for it.
 */
export async function startSchedulerApp(config: Config, log: Logger): Promise<SchedulerApp> {
  const redis = createRedis(config.redisUrl, 'worker');
  // ioredis reconnects by itself; log instead of letting it print unhandled errors.
  redis.on('error', (err) => log.warn({ err }, 'redis connection error'));
  const dbs = await connectDatabases(config, 'mailroom-scheduler');
  const logs = createEmailLogRepository(dbs.logs);
  await logs.ensureIndexes();
  const activity = createActivityRepository(dbs.logs);
  await activity.ensureIndexes();
  const queue = createRetentionQueue(redis, config.queuePrefix);
  await queue.upsertJobScheduler(RETENTION_SCHEDULER_ID, { pattern: config.retentionSchedule, tz: 'UTC' }, { name: 'retention', data: {} });
  const webhookDeliveries = createWebhookDeliveryRepository(dbs.logs);
  await webhookDeliveries.ensureIndexes();
  const worker = createRetentionWorker({ config, connection: redis, logs, activity, webhookDeliveries, log });
  worker.on('error', (err) => log.error({ err }, 'retention worker error'));
  await worker.waitUntilReady();
  const events = createEmailEventsRepository(dbs.logs, { machineWindowMs: config.tracking.machineOpenWindowSeconds * 1000 });
  const deliveryEvents = createDeliveryEventQueue(redis, config.queuePrefix, config.events.attempts, config.events.backoffMs);
  const orphans = startOrphanAdoption({
    events,
    queue: deliveryEvents,
    log,
    intervalMs: config.events.orphanSweepIntervalMs,
    retentionMonths: config.retentionMonths,
  });
  const metricsServer = await startSchedulerMetrics({ config, redis, worker, log });
  log.info(
    { scheduler: RETENTION_SCHEDULER_ID, pattern: config.retentionSchedule, tz: 'UTC', months: config.retentionMonths },
    'scheduler ready',
  );
  return {
    queue,
    orphans,
    metricsUrl: metricsServer?.url ?? null,
    async close() {
      await orphans.stop();
      await deliveryEvents.close();
      await worker.close();
      await metricsServer?.close();
      await queue.close();
      await redis.quit().catch(() => redis.disconnect());
      await dbs.close();
    },
  };
}
