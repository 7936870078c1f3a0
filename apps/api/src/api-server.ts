import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  connectDatabases,
  createActivityRepository,
  createSuppressionRepository,
  createEmailLogRepository,
  createEmailSettingsRepository,
  createIdempotencyStore,
  createRedis,
  createSecretBox,
  createSendEmailQueue,
  createWorkspaceRepository,
  type Config,
  type Logger,
} from '@mailroom/shared';
import { createApp } from './app';
import { createKeyAuth } from './auth';

export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Connects, builds the app and listens (port 0 picks a free port, as tests do). */
export async function startApiServer(config: Config, log: Logger): Promise<ApiServer> {
  const redis = createRedis(config.redisUrl, 'client');
  const dbs = await connectDatabases(config, 'mailroom-api');
  const workspaces = createWorkspaceRepository(dbs.main);
  await workspaces.ensureIndexes();
  const logs = createEmailLogRepository(dbs.logs);
  await logs.ensureIndexes();
  const suppressions = createSuppressionRepository(dbs.main);
  await suppressions.ensureIndexes();
  const activity = createActivityRepository(dbs.logs);
  await activity.ensureIndexes();
  const settings = createEmailSettingsRepository(dbs.main, createSecretBox(config.secretsKey));
  const sendQueue = createSendEmailQueue(redis, config.queuePrefix, config.send.attempts, config.send.backoffMs);
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
    requireKey: createKeyAuth(workspaces),
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
      await sendQueue.close();
      await redis.quit().catch(() => redis.disconnect());
      await dbs.close();
    },
  };
}
