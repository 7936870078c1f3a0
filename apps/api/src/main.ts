import { createLogger, loadConfig } from '@mailroom/shared';
import { startApiServer } from './api-server';

async function main() {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'api' });
  if (config.devDefaults.length) log.warn({ variables: config.devDefaults }, 'using development defaults');
  const server = await startApiServer(config, log);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: finishing requests');
    server.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
