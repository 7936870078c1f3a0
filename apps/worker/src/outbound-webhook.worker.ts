import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import {
  OutboundWebhookJob,
  QUEUES,
  type ActivityRepository,
  type Config,
  type DeliveryEndpoint,
  type DeliveryOutcome,
  type Logger,
  type Metrics,
  type PostResult,
  type WebhookDeliveryRepository,
  type WebhookEndpointDirectory,
  type WebhookEndpointRepository,
  type WebhookPoster,
} from '@mailroom/shared';

export interface OutboundWebhookWorkerDeps {
  config: Config;
  connection: ConnectionOptions;
  endpoints: WebhookEndpointRepository;
  directory: WebhookEndpointDirectory;
  deliveries: WebhookDeliveryRepository;
  activity: ActivityRepository;
  poster: WebhookPoster;
  log: Logger;
  metrics?: Metrics;
}

/**
 * The processor: one attempt to deliver one message to one endpoint. Any 2xx is delivered;
 * `410 Gone` disables the endpoint at once; anything else (another status, a timeout, a
 * connection error) is thrown for BullMQ to retry with backoff, and a message that failed its
 * last attempt disables an endpoint that has been failing for OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS.
 * A refused target (SSRF policy) is a permanent failure of that message. Every attempt is kept.
 */
export function createOutboundWebhookProcessor(deps: Omit<OutboundWebhookWorkerDeps, 'connection'>) {
  const { config, endpoints, directory, deliveries, log } = deps;

  const disable = async (endpoint: DeliveryEndpoint, reason: 'gone' | 'failing', details: Record<string, unknown>) => {
    if (!(await endpoints.disable(endpoint.id, reason, new Date()))) return;
    await directory.changed(endpoint.workspaceId);
    await deps.activity.record({
      workspaceId: endpoint.workspaceId,
      action: 'webhook_endpoint.disabled',
      actorKeyId: 'system',
      target: endpoint.id,
      details: { reason, ...details },
    });
    log.warn({ endpointId: endpoint.id, workspaceId: endpoint.workspaceId, reason }, 'webhook endpoint disabled');
  };

  return async function processOutboundWebhook(job: Job): Promise<DeliveryOutcome> {
    const data = OutboundWebhookJob.parse(job.data);
    const attempt = job.attemptsMade + 1;
    const final = attempt >= (job.opts.attempts ?? 1);
    const record = async (outcome: DeliveryOutcome, r: Omit<PostResult, 'refused'>, nextRetryAt: Date | null = null) => {
      await deliveries.recordAttempt({
        workspaceId: data.workspaceId,
        endpointId: data.endpointId,
        messageId: data.messageId,
        type: data.type,
        attempt,
        outcome,
        statusCode: r.statusCode,
        durationMs: r.durationMs,
        error: r.error,
        nextRetryAt,
        replay: String(job.id).includes('.replay-'),
        at: new Date(),
      });
      deps.metrics?.outboundWebhooks.inc({ outcome });
    };

    const endpoint = (await directory.forWorkspace(data.workspaceId)).find((e) => e.id === data.endpointId);
    if (!endpoint?.enabled) {
      await record('skipped', { statusCode: null, durationMs: 0, error: endpoint ? 'endpoint disabled' : 'endpoint deleted' });
      return 'skipped';
    }
    await deliveries.saveMessage({ id: data.messageId, workspaceId: data.workspaceId, type: data.type, body: data.body }, new Date());
    const r = await deps.poster.post(endpoint, { id: data.messageId, body: data.body });

    if (r.statusCode !== null && r.statusCode >= 200 && r.statusCode < 300) {
      await record('delivered', r);
      if (endpoint.failingSince && (await endpoints.markHealthy(endpoint.id))) await directory.changed(endpoint.workspaceId);
      return 'delivered';
    }
    if (r.statusCode === 410) {
      await record('gone', r);
      await disable(endpoint, 'gone', { statusCode: 410, messageId: data.messageId });
      throw new UnrecoverableError(`410 Gone from ${data.endpointId}: endpoint disabled`);
    }

    const failing = await endpoints.markFailing(endpoint.id, new Date());
    if (failing.started) await directory.changed(endpoint.workspaceId);
    const last = final || r.refused;
    const delay = config.outboundWebhooks.backoffMs * 2 ** (attempt - 1);
    await record(r.refused ? 'refused' : last ? 'failed' : 'retrying', r, last ? null : new Date(Date.now() + delay));
    log[last ? 'warn' : 'debug'](
      { endpointId: endpoint.id, messageId: data.messageId, attempt, statusCode: r.statusCode, error: r.error, final: last },
      last ? 'webhook message failed its last attempt' : 'webhook attempt failed, will retry',
    );
    if (last && failing.since && Date.now() - failing.since.getTime() >= config.outboundWebhooks.disableAfterMs) {
      await disable(endpoint, 'failing', { failingSince: failing.since.toISOString(), messageId: data.messageId, lastError: r.error });
    }
    if (last) throw new UnrecoverableError(r.error ?? 'delivery failed');
    throw new Error(r.error ?? 'delivery failed');
  };
}

/** The BullMQ worker on the outbound-webhooks queue. Nothing runs until the worker app calls this. */
export function createOutboundWebhookWorker(deps: OutboundWebhookWorkerDeps): Worker<unknown, DeliveryOutcome> {
  return new Worker(QUEUES.outboundWebhooks, createOutboundWebhookProcessor(deps), {
    connection: deps.connection,
    prefix: deps.config.queuePrefix,
    concurrency: deps.config.outboundWebhooks.concurrency,
    // A post waits at most OUTBOUND_WEBHOOK_TIMEOUT_MS; the lock stays well above it.
    lockDuration: Math.max(30_000, deps.config.outboundWebhooks.timeoutMs + 20_000),
    maxStalledCount: 2,
  });
}
