import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import {
  QUEUES,
  runRetention,
  type ActivityRepository,
  type Config,
  type EmailLogRepository,
  type Logger,
  type RetentionJob,
  type RetentionResult,
  type WebhookDeliveryRepository,
} from '@mailroom/shared';

/** Processes the daily retention job: entries older than RETENTION_MONTHS go, in batches. */
export function createRetentionWorker(deps: {
  config: Config;
  connection: ConnectionOptions;
  logs: EmailLogRepository;
  activity: ActivityRepository;
  /** Outbound webhook attempts and messages follow the log's retention. */
  webhookDeliveries?: WebhookDeliveryRepository;
  log: Logger;
}): Worker<RetentionJob, RetentionResult> {
  return new Worker<RetentionJob, RetentionResult>(
    QUEUES.retention,
    async (job: Job<RetentionJob>) => {
      // The tick's own time, so a job that runs late still removes what was due at 03:00.
      const now = job.data.now ? new Date(job.data.now) : new Date(job.timestamp);
      const result = await runRetention({
        logs: deps.logs,
        activity: deps.activity,
        log: deps.log,
        now,
        months: deps.config.retentionMonths,
        pauseMs: 5,
      });
      await deps.webhookDeliveries?.removeBefore(new Date(result.cutoff));
      return result;
    },
    { connection: deps.connection, prefix: deps.config.queuePrefix, concurrency: 1, lockDuration: 120_000 },
  );
}
