import { loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';

/**
 * The body of every `main.ts`: read the config once, start the app, and close it cleanly on
 * SIGTERM/SIGINT (finish active work, close connections) before exiting.
 */
export function runMain(name: string, start: (config: Config, log: Logger) => Promise<{ close(): Promise<void> }>): void {
  let log: Logger | undefined;
  const boot = async () => {
    const config = loadConfig();
    log = createLogger({ level: config.logLevel, name });
    if (config.devDefaults.length) log.warn({ variables: config.devDefaults }, 'using development defaults');
    const app = await start(config, log);
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) return;
      closing = true;
      log!.info({ signal }, 'shutting down');
      app.close().then(
        () => process.exit(0),
        (err) => {
          log!.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  };
  boot().catch((err) => {
    if (log) log.fatal({ err }, 'failed to start');
    else console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
