import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { REPO_ROOT, ServerProcess, type ExitInfo } from '../../infra/dev/process';
import type { TestSystem } from './system';
import { WORKER_V8_OPTIONS } from '../../apps/worker/src/v8-options';

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<ExitInfo>;
  /** Sends `signal` (SIGTERM by default) and waits for exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/**
 * The environment of `sys`'s own configuration, for a worker process that should behave like
 * the worker a TestSystem starts in-process: same Redis, databases, queue prefix, SMTP relay and
 * timeouts. The variables are built from the parsed config, so overrides given to
 * `startTestSystem` (SEND_ATTEMPTS, REDIS_URL, …) carry over.
 */
export function workerEnv(sys: TestSystem): Record<string, string> {
  const c = sys.config;
  return {
    NODE_ENV: 'test',
    // 'worker ready' and 'shutting down' are info lines, and tests wait for them.
    LOG_LEVEL: 'info',
    REDIS_URL: c.redisUrl,
    MONGODB_URI: c.mongo.uri,
    MONGODB_DB: c.mongo.db,
    LOGS_MONGODB_URI: c.logsMongo.uri,
    LOGS_MONGODB_DB: c.logsMongo.db,
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: String(c.mongo.serverSelectionTimeoutMs),
    OPERATOR_TOKEN: c.operatorToken,
    SECRETS_KEY: c.secretsKey,
    QUEUE_PREFIX: c.queuePrefix,
    MANAGED_SMTP_URL: c.managed.smtpUrl,
    MANAGED_FROM: c.managed.from,
    SEND_ATTEMPTS: String(c.send.attempts),
    SEND_BACKOFF_MS: String(c.send.backoffMs),
    SEND_CONCURRENCY: String(c.send.concurrency),
    // The socket timeout also sets the job lock (+10 s, at least 30 s), so how long a stall takes to recover.
    SMTP_CONNECTION_TIMEOUT_MS: String(c.send.connectionTimeoutMs),
    SMTP_GREETING_TIMEOUT_MS: String(c.send.greetingTimeoutMs),
    SMTP_SOCKET_TIMEOUT_MS: String(c.send.socketTimeoutMs),
    SMTP_POOL_MAX_CONNECTIONS: String(c.send.poolMaxConnections),
    SMTP_IGNORE_TLS: String(c.send.ignoreTls),
    OUTBOX_FLUSH_INTERVAL_MS: String(c.send.outboxFlushIntervalMs),
    PUBLIC_URL: c.publicUrl,
    TRACKING_ENABLED: String(c.tracking.enabled),
    METRICS_PORT: '0',
    OUTBOUND_WEBHOOK_BACKOFF_MS: String(c.outboundWebhooks.backoffMs),
    OUTBOUND_WEBHOOK_ATTEMPTS: String(c.outboundWebhooks.attempts),
    WEBHOOK_TARGETS_ALLOW_PRIVATE: String(c.outboundWebhooks.allowPrivateTargets),
  };
}

/**
 * Starts the real worker app (`apps/worker/src/main.ts`) as a separate OS process with the
 * environment of `sys` (see {@link workerEnv}) plus `opts.env`, and resolves once it logged
 * 'worker ready'. If it does not get there, the process is killed and the error carries its
 * output. The child gets no other environment, so nothing of the test runner's leaks into it.
 */
export async function startWorkerProcess(
  sys: TestSystem,
  opts: { env?: Record<string, string>; readyTimeoutMs?: number } = {},
): Promise<WorkerProcess> {
  const env = { ...workerEnv(sys), ...opts.env };
  // ServerProcess kills the child if the test runner exits first.
  const proc = new ServerProcess(
    'worker',
    process.execPath,
    [...WORKER_V8_OPTIONS, '--import', 'tsx', path.join(REPO_ROOT, 'apps/worker/src/main.ts')],
    {
      cwd: REPO_ROOT,
      env,
    },
  );
  let out = '';
  for (const stream of [proc.child.stdout, proc.child.stderr]) stream?.on('data', (chunk: string) => (out += chunk));
  try {
    await proc.waitForLine('worker ready', opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return {
    child: proc.child,
    output: () => out,
    exited: proc.exited,
    stop: (signal = 'SIGTERM', graceMs = 5000) => proc.stop(signal, graceMs),
  };
}
