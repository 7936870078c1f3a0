import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  connectDatabases,
  createCachedSuppressionRepository,
  createCachedTrackingSettings,
  createActivityRepository,
  createSuppressionRepository,
  createEmailLogRepository,
  createEmailSettingsRepository,
  createIdempotencyStore,
  coalesceWrites,
  createRedis,
  createSecretBox,
  createSendEmailQueue,
  createRetentionQueue,
  createDeliveryEventQueue,
  createTrackingSettingsRepository,
  createTrackingTokens,
  createWorkspaceRepository,
  createMetrics,
  createOutboundWebhookQueue,
  createWebhookDeliveryRepository,
  createWebhookEndpointDirectory,
  createWebhookEndpointRepository,
  type Config,
  type Logger,
} from '@mailroom/shared';
import { createApp, type ApiDeps } from './app';
import { createKeyAuth } from './auth';
import { createRateLimiter, withRateLimit } from './rate-limit';

export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Connects, builds the app and listens (port 0 picks a free port, as tests do). */
export async function startApiServer(config: Config, log: Logger, overrides: Partial<Pick<ApiDeps, 'snsHttp'>> = {}): Promise<ApiServer> {
  // Requests whose bytes arrived in one turn of the event loop share one socket write (coalesceWrites).
  const redis = coalesceWrites(createRedis(config.redisUrl, 'client'));
  // ioredis reconnects by itself; log instead of letting it print unhandled errors.
  redis.on('error', (err) => log.warn({ err }, 'redis connection error'));
  const dbs = await connectDatabases(config, 'mailroom-api');
  const workspaces = createWorkspaceRepository(dbs.main);
  await workspaces.ensureIndexes();
  const logs = createEmailLogRepository(dbs.logs);
  await logs.ensureIndexes();
  const suppressions = createCachedSuppressionRepository(createSuppressionRepository(dbs.main), redis, config.queuePrefix);
  await suppressions.ensureIndexes();
  const activity = createActivityRepository(dbs.logs);
  await activity.ensureIndexes();
  const settings = createEmailSettingsRepository(dbs.main, createSecretBox(config.secretsKey));
  const sendQueue = createSendEmailQueue(redis, config.queuePrefix, config.send.attempts, config.send.backoffMs);
  // Only for Bull Board: the scheduler owns the retention job.
  const retentionQueue = createRetentionQueue(redis, config.queuePrefix);
  const deliveryEvents = createDeliveryEventQueue(redis, config.queuePrefix, config.events.attempts, config.events.backoffMs);
  const outboundQueue = createOutboundWebhookQueue(
    redis,
    config.queuePrefix,
    config.outboundWebhooks.attempts,
    config.outboundWebhooks.backoffMs,
  );
  const boardQueues = [sendQueue, retentionQueue, deliveryEvents, outboundQueue];
  const webhookEndpoints = createWebhookEndpointRepository(dbs.main, createSecretBox(config.secretsKey));
  await webhookEndpoints.ensureIndexes();
  const webhookDeliveries = createWebhookDeliveryRepository(dbs.logs);
  await webhookDeliveries.ensureIndexes();
  const app = createApp({
    config,
    log,
    dbs,
    redis,
    workspaces,
    settings,
    logs,
    sendQueue,
    idempotency: createIdempotencyStore(redis, config.queuePrefix),
    suppressions,
    activity,
    requireKey: withRateLimit(createKeyAuth(workspaces), createRateLimiter(redis, config, log)),
    boardQueues,
    deliveryEvents,
    trackingSettings: createCachedTrackingSettings(createTrackingSettingsRepository(dbs.main), redis, config.queuePrefix),
    trackingTokens: createTrackingTokens(createSecretBox(config.secretsKey).deriveKey('tracking-v1')),
    outboundWebhooks: {
      webhookEndpoints,
      webhookDirectory: createWebhookEndpointDirectory(webhookEndpoints, redis, config.queuePrefix),
      deliveries: webhookDeliveries,
      queue: outboundQueue,
    },
    metrics: createMetrics({ queues: boardQueues }),
    ...overrides,
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  log.info({ url }, 'api listening');

  return {
    url,
    port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const q of boardQueues) await q.close();
      await redis.quit().catch(() => redis.disconnect());
      await dbs.close();
    },
  };
}
