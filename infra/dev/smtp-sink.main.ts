/**
 * Runs the SMTP sink as its own process: `tsx infra/dev/smtp-sink.main.ts`.
 * Env: SMTP_SINK_PORT (default 2525), SMTP_SINK_HOST (default 127.0.0.1),
 * SMTP_SINK_SLOW_MS (default 3000); with SIMULATOR_WEBHOOK_URL and SIMULATOR_WEBHOOK_SECRET set,
 * the mailbox simulator posts provider events there (SIMULATOR_OPEN_AFTER_MS, default 3000). Logs the received message count every few seconds
 * (only when it changed) and closes on SIGTERM / SIGINT. Received messages are counted and then
 * dropped, so a long benchmark does not grow memory.
 */
import { startSmtpSink } from './smtp-sink';

const LOG_EVERY_MS = 5000;

async function main(): Promise<void> {
  const port = Number(process.env.SMTP_SINK_PORT ?? 2525);
  const host = process.env.SMTP_SINK_HOST ?? '127.0.0.1';
  const slowMs = process.env.SMTP_SINK_SLOW_MS === undefined ? undefined : Number(process.env.SMTP_SINK_SLOW_MS);
  const webhookUrl = process.env.SIMULATOR_WEBHOOK_URL;
  const secret = process.env.SIMULATOR_WEBHOOK_SECRET;
  const openAfterMs = process.env.SIMULATOR_OPEN_AFTER_MS === undefined ? undefined : Number(process.env.SIMULATOR_OPEN_AFTER_MS);
  const events = webhookUrl && secret ? { webhookUrl, secret, openAfterMs, log: (line: string) => console.log(line) } : undefined;
  const sink = await startSmtpSink({ port, host, slowMs, ...(events ? { events } : {}) });
  console.log(`smtp-sink listening on ${sink.url}${events ? `; simulator events to ${events.webhookUrl}` : ''}`);

  let total = 0;
  let lastLogged = 0;
  const logCount = () => {
    total += sink.messages.splice(0).length;
    if (total === lastLogged) return;
    lastLogged = total;
    console.log(`smtp-sink received ${total} messages`);
  };
  const interval = setInterval(logCount, LOG_EVERY_MS);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    clearInterval(interval);
    logCount();
    console.log(`smtp-sink ${signal}: closing (total ${total} messages)`);
    sink.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error('smtp-sink failed to start:', err);
  process.exit(1);
});
