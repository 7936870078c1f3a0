import type { Worker } from 'bullmq';
import type { Db } from 'mongodb';
import {
  createOutboundWebhookQueue,
  createWebhookDeliveryRepository,
  createWebhookDispatcher,
  createWebhookEndpointDirectory,
  createWebhookEndpointRepository,
  createWebhookPoster,
  type ActivityRepository,
  type Config,
  type Logger,
  type Metrics,
  type RedisClient as Redis,
  type SecretBox,
  type SendOutcome,
  type WebhookDispatcher,
} from '@mailroom/shared';
import { createOutboundWebhookWorker } from './outbound-webhook.worker';

/* The worker's outbound webhooks (the dispatcher the send and event paths call, the delivery worker) and its metric hooks. */

export interface OutboundWebhooks {
  dispatcher: WebhookDispatcher;
  worker: Worker;
  close(): Promise<void>;
}

export async function startOutboundWebhooks(deps: {
  config: Config;
  /** BullMQ's connection (the worker's, retrying forever). */
  redis: Redis;
  /** Our own keys (the endpoints' cache version). */
  own: Redis;
  main: Db;
  logs: Db;
  secretBox: SecretBox;
  activity: ActivityRepository;
  log: Logger;
  metrics: Metrics;
}): Promise<OutboundWebhooks> {
  const { config, log } = deps;
  const endpoints = createWebhookEndpointRepository(deps.main, deps.secretBox);
  await endpoints.ensureIndexes();
  const deliveries = createWebhookDeliveryRepository(deps.logs);
  await deliveries.ensureIndexes();
  const directory = createWebhookEndpointDirectory(endpoints, deps.own, config.queuePrefix);
  // Filled by the send and event paths, one `addBulk` a turn of the event loop (the dispatcher
  // batches them). On BullMQ's connection, not on `own`: BullMQ defines its 64 scripts as commands
  // of the connection it is given, and ioredis copies every command of a connection onto each
  // pipeline it builds (when `own` auto-pipelined, every batch of our small commands paid for 128
  // property copies, about 5 % of the worker's samples in a profile of the throughput bench).
  const queue = createOutboundWebhookQueue(
    deps.redis,
    config.queuePrefix,
    config.outboundWebhooks.attempts,
    config.outboundWebhooks.backoffMs,
  );
  const poster = createWebhookPoster(config.outboundWebhooks, { timeoutMs: config.outboundWebhooks.timeoutMs });
  const worker = createOutboundWebhookWorker({
    config,
    connection: deps.redis,
    endpoints,
    directory,
    deliveries,
    activity: deps.activity,
    poster,
    log,
    metrics: deps.metrics,
  });
  worker.on('error', (err) => log.error({ err }, 'outbound webhook worker error'));
  await worker.waitUntilReady();
  return {
    dispatcher: createWebhookDispatcher({ queue, directory }),
    worker,
    async close() {
      await worker.close();
      await queue.close();
      poster.close();
    },
  };
}

/** Counts a recorded send outcome: `sent`, or a final `send_failed` (a `queued` between retries is neither). */
export function countOutcome(metrics: Metrics): (o: SendOutcome) => void {
  return (o) => {
    if (o.status === 'sent') metrics.emailsSent.inc({ send_method: o.sendMethod });
    else if (o.status === 'send_failed') metrics.emailsSendFailed.inc({ send_method: o.sendMethod, error_code: o.errorCode ?? 'EUNKNOWN' });
  };
}

/** `mailroom_delivery_events_total` from the delivery-event worker's finished jobs. */
export function countDeliveryEvents(worker: Worker, metrics: Metrics): void {
  const labels = (data: unknown) => {
    const d = (data ?? {}) as { provider?: unknown; type?: unknown };
    return { provider: String(d.provider ?? 'unknown'), type: String(d.type ?? 'unknown') };
  };
  worker.on('completed', (job, result) => metrics.deliveryEvents.inc({ ...labels(job.data), outcome: String(result) }));
  worker.on('failed', (job) => {
    if (!job) return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1);
    metrics.deliveryEvents.inc({ ...labels(job.data), outcome: final ? 'failed' : 'retried' });
  });
}
