import express, { type Express, type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
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
  type SuppressionRepository,
  type WorkspaceRepository,
} from '@mailroom/shared';
import { errorHandler, notFoundHandler } from './http-error';
import { adminRoutes } from './routes/admin.routes';
import { emailsRoutes } from './routes/emails.routes';
import { healthRoutes } from './routes/health.routes';
import { settingsRoutes } from './routes/settings.routes';
import { workspacesRoutes } from './routes/workspaces.routes';

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
}

/** Builds the HTTP app from its dependencies; it does not listen (see `api-server.ts`). */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // Base64 attachments grow by a third; the rest of a message adds up to a few MB.
  const limit = Math.ceil((deps.config.send.maxAttachmentsBytes * 4) / 3) + 12 * 1024 * 1024;
  app.use(express.json({ limit, strict: true }));

  app.use(healthRoutes(deps));
  app.use(workspacesRoutes(deps));
  app.use(emailsRoutes(deps));
  app.use(settingsRoutes(deps));
  app.use(adminRoutes(deps));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  return app;
}
