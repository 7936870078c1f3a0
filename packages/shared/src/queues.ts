import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { DeliveryEvent } from './email-log/events/events';
import type { SendEmailJob } from './schemas';

/**
 * Queue names. Renaming one strands the jobs already waiting under the old name: add a new
 * queue and drain the old one instead.
 */
export const QUEUES = {
  sendEmail: 'send-email',
  retention: 'retention',
  deliveryEvents: 'delivery-events',
  outboundWebhooks: 'outbound-webhooks',
} as const;

/** The job scheduler id of the daily cleanup: one id, so any number of schedulers make one job per tick. */
export const RETENTION_SCHEDULER_ID = 'retention-daily';

/** How long finished jobs stay visible in Bull Board before Redis forgets them. */
export const FINISHED_JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
} as const satisfies DefaultJobOptions;

/** Job options of a queue whose jobs retry: `attempts` in all, exponential backoff from `backoffMs` with ±20 % jitter. */
export function retriedJobOptions(attempts: number, backoffMs: number): DefaultJobOptions {
  return { attempts, backoff: { type: 'exponential', delay: backoffMs, jitter: 0.2 }, ...FINISHED_JOB_RETENTION };
}

export type SendEmailQueue = Queue<SendEmailJob>;

/** The queue the API fills and the worker drains; job id = email id. */
export function createSendEmailQueue(connection: ConnectionOptions, prefix: string, attempts: number, backoffMs: number): SendEmailQueue {
  return new Queue<SendEmailJob>(QUEUES.sendEmail, {
    connection,
    prefix,
    defaultJobOptions: retriedJobOptions(attempts, backoffMs),
  });
}

export interface RetentionJob {
  /** ISO time to compute the cut-off from; the job's own time when absent. */
  now?: string;
}

export type RetentionQueue = Queue<RetentionJob>;

/** The queue the scheduler registers the daily 03:00 UTC cleanup on. */
export function createRetentionQueue(connection: ConnectionOptions, prefix: string): RetentionQueue {
  return new Queue<RetentionJob>(QUEUES.retention, {
    connection,
    prefix,
    defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 60_000 }, ...FINISHED_JOB_RETENTION },
  });
}

export type DeliveryEventQueue = Queue<DeliveryEvent>;

/**
 * The queue webhook and tracking routes fill and the delivery-event worker drains. Add jobs with
 * `jobId: deliveryEventJobId(event)`, so a redelivered provider event is not queued twice. The
 * retries give an event that beat its entry to the database time to find it; after the last
 * one the worker keeps it as an orphan.
 */
export function createDeliveryEventQueue(
  connection: ConnectionOptions,
  prefix: string,
  attempts: number,
  backoffMs: number,
): DeliveryEventQueue {
  return new Queue<DeliveryEvent>(QUEUES.deliveryEvents, {
    connection,
    prefix,
    defaultJobOptions: retriedJobOptions(attempts, backoffMs),
  });
}
