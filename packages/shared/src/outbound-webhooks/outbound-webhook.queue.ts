import { Queue, type ConnectionOptions } from 'bullmq';
import { QUEUES, retriedJobOptions } from '../queues';
import type { OutboundWebhookJob } from './messages';

export type OutboundWebhookQueue = Queue<OutboundWebhookJob>;

/**
 * One job per endpoint and message (`jobId: outboundWebhookJobId(…)`, so a message enqueued
 * again after a crash is not queued twice). Failed attempts retry with exponential backoff and
 * jitter: OUTBOUND_WEBHOOK_BACKOFF_MS, doubling, OUTBOUND_WEBHOOK_ATTEMPTS in all.
 */
export function createOutboundWebhookQueue(
  connection: ConnectionOptions,
  prefix: string,
  attempts: number,
  backoffMs: number,
): OutboundWebhookQueue {
  return new Queue<OutboundWebhookJob>(QUEUES.outboundWebhooks, {
    connection,
    prefix,
    defaultJobOptions: retriedJobOptions(attempts, backoffMs),
  });
}
