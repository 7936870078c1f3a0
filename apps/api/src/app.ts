import type { Queue } from 'bullmq';
import express, { type Express, type RequestHandler } from 'express';
import {
  type ActivityRepository,
  type Config,
  type Databases,
  type EmailLogRepository,
  type EmailSettingsRepository,
  type IdempotencyStore,
  type KeyRole,
  type Logger,
  type SendEmailQueue,
  type DeliveryEventQueue,
  type SuppressionRepository,
  type TrackingSettingsRepository,
  type TrackingTokens,
  type WorkspaceRepository,
  type Metrics,
  type OutboundWebhookQueue,
  type WebhookDeliveryRepository,
  type WebhookEndpointDirectory,
  type WebhookEndpointRepository,
  type RedisClient as Redis,
} from '@mailroom/shared';
import { bullBoardRoutes } from './bull-board';
import { errorHandler, notFoundHandler } from './http-error';
import { API_ROUTES } from './openapi';
import { strictQuery } from './strict-query';
import { activityRoutes } from './routes/activity.routes';
import { emailLogsRoutes } from './routes/email-logs.routes';
import { openapiRoutes } from './routes/openapi.routes';
import { adminRoutes } from './routes/admin.routes';
import { emailsRoutes } from './routes/emails.routes';
import { healthRoutes } from './routes/health.routes';
import { settingsRoutes } from './routes/settings.routes';
import { webRoutes } from './routes/web.routes';
import { workspacesRoutes } from './routes/workspaces.routes';
import { suppressionsRoutes } from './routes/suppressions.routes';
import { trackingRoutes } from './routes/tracking.routes';
import { webhooksRoutes } from './routes/webhooks.routes';
import { metricsRoutes } from './routes/metrics.routes';
import { webhookEndpointsRoutes } from './routes/webhook-endpoints.routes';
import type { SnsHttp } from './webhooks/ses';

export interface ApiDeps {
  config: Config;
  log: Logger;
  dbs: Databases;
  redis: Redis;
  workspaces: WorkspaceRepository;
  settings: EmailSettingsRepository;
  logs: EmailLogRepository;
  sendQueue: SendEmailQueue;
  idempotency: IdempotencyStore;
  suppressions: SuppressionRepository;
  activity: ActivityRepository;
  requireKey: (...roles: KeyRole[]) => RequestHandler;
  /** Queues shown to operators in Bull Board at /admin/queues. */
  boardQueues: Queue[];
  /** Webhook and tracking events go here; the delivery-event worker applies them. */
  deliveryEvents: DeliveryEventQueue;
  trackingSettings: TrackingSettingsRepository;
  trackingTokens: TrackingTokens;
  /** Outbound webhooks: endpoints, their cache version, delivery attempts, the queue replays go to. */
  outboundWebhooks: {
    webhookEndpoints: WebhookEndpointRepository;
    webhookDirectory: WebhookEndpointDirectory;
    deliveries: WebhookDeliveryRepository;
    queue: OutboundWebhookQueue;
  };
  /** This process's Prometheus registry and counters (`GET /metrics`). */
  metrics: Metrics;
  /** SNS certificate and subscription fetches (tests inject local certificates; production uses fetch). */
  snsHttp?: SnsHttp;
}

/** Builds the HTTP app from its dependencies; it does not listen (see `api-server.ts`). */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // Base64 attachments grow by a third; the rest of a message adds up to a few MB.
  const limit = Math.ceil((deps.config.send.maxAttachmentsBytes * 4) / 3) + 12 * 1024 * 1024;
  app.use(strictQuery(API_ROUTES));
  // Webhooks need the raw bytes for their signatures: registered before the JSON parser.
  app.use(webhooksRoutes(deps));
  app.use(express.json({ limit, strict: true }));

  app.use(healthRoutes(deps));
  app.use(workspacesRoutes(deps));
  app.use(emailsRoutes(deps));
  app.use(settingsRoutes(deps));
  app.use(adminRoutes(deps));
  app.use(trackingRoutes(deps));
  app.use(suppressionsRoutes(deps));
  app.use(emailLogsRoutes(deps));
  app.use(activityRoutes(deps));
  app.use(webhookEndpointsRoutes(deps));
  app.use(metricsRoutes(deps));
  app.use(openapiRoutes(deps));
  app.use(bullBoardRoutes(deps.boardQueues, deps.config.operatorToken));
  app.use(webRoutes());

  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  return app;
}
