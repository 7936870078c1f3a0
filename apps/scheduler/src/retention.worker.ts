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
} from '@mailroom/shared';

/** Processes the daily retention job: entries older than RETENTION_MONTHS go, in batches. */
export function createRetentionWorker(deps: {
  config: Config;
  connection: ConnectionOptions;
  logs: EmailLogRepository;
  activity: ActivityRepository;
  log: Logger;
}): Worker<RetentionJob, RetentionResult> {
  return new Worker<RetentionJob, RetentionResult>(
    QUEUES.retention,
    async (job: Job<RetentionJob>) => {
      // The tick's own time, so a job that runs late still removes what was due at 03:00.
      const now = job.data.now ? new Date(job.data.now) : new Date(job.timestamp);
      return runRetention({
        logs: deps.logs,
        activity: deps.activity,
        log: deps.log,
        now,
        months: deps.config.retentionMonths,
        pauseMs: 5,
      });
    },
    { connection: deps.connection, prefix: deps.config.queuePrefix, concurrency: 1, lockDuration: 120_000 },
  );
}
