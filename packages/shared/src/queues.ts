import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { SendEmailJob } from './schemas';

/**
 * Queue names. Renaming one strands the jobs already waiting under the old name: add a new
 * queue and drain the old one instead.
 */
export const QUEUES = {
  sendEmail: 'send-email',
} as const;

/** How long finished jobs stay visible in Bull Board before Redis forgets them. */
export const FINISHED_JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
} as const satisfies DefaultJobOptions;

export type SendEmailQueue = Queue<SendEmailJob>;

/** The queue the API fills and the worker drains; job id = email id. */
export function createSendEmailQueue(connection: ConnectionOptions, prefix: string, attempts: number, backoffMs: number): SendEmailQueue {
  return new Queue<SendEmailJob>(QUEUES.sendEmail, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts,
      backoff: { type: 'exponential', delay: backoffMs, jitter: 0.2 },
      ...FINISHED_JOB_RETENTION,
    },
  });
}
