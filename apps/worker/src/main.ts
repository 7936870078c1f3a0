import { createLogger, loadConfig } from '@mailroom/shared';
import { startWorkerApp } from './worker-app';

async function main() {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'worker' });
  if (config.devDefaults.length) log.warn({ variables: config.devDefaults }, 'using development defaults');
  const app = await startWorkerApp(config, log);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: finishing active jobs');
    app.close().then(
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
