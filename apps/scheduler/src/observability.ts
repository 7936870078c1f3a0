import type { Worker } from 'bullmq';
import {
  createMetrics,
  readRetentionLastRun,
  recordRetentionRun,
  startMetricsServer,
  type Config,
  type Logger,
  type MetricsServer,
  type RedisClient as Redis,
  type RetentionJob,
  type RetentionResult,
} from '@mailroom/shared';

/** The scheduler's `/metrics` port when METRICS_PORT is not set. */
export const SCHEDULER_METRICS_PORT = 9465;

/**
 * The scheduler's metrics: what retention removed, and when it last finished. The time is kept
 * in Redis, so it survives a restart and any scheduler that scrapes reports the latest run.
 */
export async function startSchedulerMetrics(deps: {
  config: Config;
  redis: Redis;
  worker: Worker<RetentionJob, RetentionResult>;
  log: Logger;
}): Promise<MetricsServer | null> {
  const { config, redis, log } = deps;
  const metrics = createMetrics({ retentionLastRun: () => readRetentionLastRun(redis, config.queuePrefix) });
  deps.worker.on('completed', (_job, result) => {
    metrics.retentionRemoved.inc(result.removed);
    recordRetentionRun(redis, config.queuePrefix).catch((err: unknown) => {
      log.warn({ err }, 'could not record the retention run time');
    });
  });
  return startMetricsServer(metrics.registry, config.metrics.host, config.metrics.port ?? SCHEDULER_METRICS_PORT, log).catch(
    (err: unknown) => {
      log.error({ err }, 'metrics server could not listen; /metrics is not served');
      return null;
    },
  );
}
