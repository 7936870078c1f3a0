import { z } from 'zod';

/**
 * The only place that reads `process.env`. Every app parses its configuration once at start
 * and hands the typed result to everything else; a bad value stops the process with a
 * message that names the variable.
 */

const DEV_SECRETS_KEY = 'mailroom-dev-secrets-key-change-me-in-production';
const DEV_OPERATOR_TOKEN = 'mailroom-dev-operator-token';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  PUBLIC_URL: z.url().optional(),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://'),
  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI'),
  LOGS_MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI')
    .optional(),
  /** Database names, when the URI names none. */
  MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,60}$/)
    .optional(),
  LOGS_MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,60}$/)
    .optional(),
  MONGODB_SERVER_SELECTION_TIMEOUT_MS: int(100, 120_000).default(5_000),
  MANAGED_SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL'),
  MANAGED_FROM: z.string().min(3),
  OPERATOR_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  SECRETS_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  QUEUE_PREFIX: z.string().min(1).max(64).default('{mailroom}'),
  SEND_ATTEMPTS: int(1, 50).default(5),
  SEND_BACKOFF_MS: int(1, 3_600_000).default(30_000),
  SEND_CONCURRENCY: int(1, 1000).default(200),
  SMTP_CONNECTION_TIMEOUT_MS: int(100, 600_000).default(15_000),
  SMTP_GREETING_TIMEOUT_MS: int(100, 600_000).default(15_000),
  SMTP_SOCKET_TIMEOUT_MS: int(100, 600_000).default(60_000),
  SMTP_POOL_MAX_CONNECTIONS: int(1, 100).default(5),
  SMTP_IGNORE_TLS: bool.default(false),
  MAX_ATTACHMENTS_BYTES: int(0, 40 * 1024 * 1024).default(10 * 1024 * 1024),
  TEST_SEND_TIMEOUT_MS: int(1000, 300_000).default(30_000),
  OUTBOX_FLUSH_INTERVAL_MS: int(10, 600_000).default(1_000),
  GOOGLE_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//)
    .default('smtps://smtp.gmail.com:465'),
  GOOGLE_TOKEN_URL: z.url().default('https://oauth2.googleapis.com/token'),
  OUTLOOK_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//)
    .default('smtp://smtp.office365.com:587'),
  OUTLOOK_TOKEN_URL: z.url().default('https://login.microsoftonline.com/common/oauth2/v2.0/token'),
  RETENTION_MONTHS: int(1, 120).default(6),
  /** Delivery-event webhooks: a provider whose key is not set answers 404. */
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  MAILGUN_SIGNING_KEY: z.string().min(8).optional(),
  /** SendGrid's signed event webhook public key (base64 DER as SendGrid shows it, or PEM). */
  SENDGRID_VERIFICATION_KEY: z.string().min(40).optional(),
  POSTMARK_WEBHOOK_AUTH: z
    .string()
    .regex(/^[^:]+:.+$/, 'must be user:pass')
    .optional(),
  /** Comma-separated SNS topic ARNs whose SES notifications are accepted. */
  SES_TOPIC_ARNS: z
    .string()
    .regex(/^arn:[^,\s]+(,arn:[^,\s]+)*$/, 'must be comma-separated arn:… values')
    .optional(),
  TRACKING_ENABLED: bool.default(true),
  MACHINE_OPEN_WINDOW_SECONDS: int(0, 3600).default(2),
  EVENTS_CONCURRENCY: int(1, 5000).default(1000),
  EVENTS_BATCH_SIZE: int(1, 5000).default(500),
  EVENTS_BATCH_WAIT_MS: int(0, 10_000).default(20),
  EVENTS_ATTEMPTS: int(1, 50).default(8),
  EVENTS_BACKOFF_MS: int(1, 3_600_000).default(2_000),
  /** How often the scheduler queues again the orphan events whose entry exists now. */
  ORPHAN_SWEEP_INTERVAL_MS: int(50, 86_400_000).default(60_000),
  /** Cron pattern (UTC) of the cleanup; tests use a faster one. */
  RETENTION_SCHEDULE: z
    .string()
    .regex(/^[\d*/,\- ]+$/, 'must be a cron pattern')
    .default('0 3 * * *'),
  /** Requests per key per minute, by role (0 turns the limit off). */
  RATE_LIMIT_SEND_PER_MINUTE: int(0, 10_000_000).default(6000),
  RATE_LIMIT_ADMIN_PER_MINUTE: int(0, 10_000_000).default(1200),
  /** Outbound webhooks (Standard Webhooks): retries, when a failing endpoint is disabled, SSRF. */
  OUTBOUND_WEBHOOK_BACKOFF_MS: int(1, 3_600_000).default(10_000),
  OUTBOUND_WEBHOOK_ATTEMPTS: int(1, 50).default(10),
  OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 365)
    .default(24),
  OUTBOUND_WEBHOOK_CONCURRENCY: int(1, 1000).default(50),
  OUTBOUND_WEBHOOK_TIMEOUT_MS: int(100, 60_000).default(10_000),
  WEBHOOK_TARGETS_ALLOW_PRIVATE: bool.optional(),
  /** Worker and scheduler: where `/metrics` listens (the API serves it on its own port). */
  METRICS_PORT: int(0, 65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
});

export type Env = z.input<typeof EnvSchema>;

export interface Config {
  env: 'development' | 'production' | 'test';
  logLevel: string;
  port: number;
  host: string;
  publicUrl: string;
  redisUrl: string;
  mongo: { uri: string; db: string; serverSelectionTimeoutMs: number };
  logsMongo: { uri: string; db: string; serverSelectionTimeoutMs: number };
  managed: { smtpUrl: string; from: string };
  operatorToken: string;
  secretsKey: string;
  queuePrefix: string;
  send: {
    attempts: number;
    backoffMs: number;
    concurrency: number;
    connectionTimeoutMs: number;
    greetingTimeoutMs: number;
    socketTimeoutMs: number;
    poolMaxConnections: number;
    ignoreTls: boolean;
    maxAttachmentsBytes: number;
    testSendTimeoutMs: number;
    outboxFlushIntervalMs: number;
  };
  oauth: {
    google: { smtpUrl: string; tokenUrl: string };
    outlook: { smtpUrl: string; tokenUrl: string };
  };
  retentionMonths: number;
  webhooks: {
    secret: string | null;
    mailgunSigningKey: string | null;
    sendgridVerificationKey: string | null;
    postmarkAuth: { user: string; pass: string } | null;
    sesTopicArns: string[];
  };
  tracking: { enabled: boolean; machineOpenWindowSeconds: number };
  /** The delivery-event worker: job concurrency, batch size and wait, retries before an event is kept as an orphan. */
  events: {
    concurrency: number;
    batchSize: number;
    batchWaitMs: number;
    attempts: number;
    backoffMs: number;
    orphanSweepIntervalMs: number;
  };
  retentionSchedule: string;
  /** Requests per API key per minute, by key role; 0 means unlimited. */
  rateLimit: { send: number; admin: number };
  /** Outbound webhooks: retries, the failing stretch after which an endpoint is disabled, SSRF. */
  outboundWebhooks: {
    backoffMs: number;
    attempts: number;
    disableAfterMs: number;
    concurrency: number;
    timeoutMs: number;
    /** Targets on loopback, private, link-local or metadata addresses (and plain http in production) allowed. */
    allowPrivateTargets: boolean;
    /** Plain `http://` targets refused (production, unless private targets are allowed). */
    requireHttps: boolean;
  };
  /** Worker and scheduler `/metrics`: the port (null: the process's default, 9464 / 9465) and host. */
  metrics: { port: number | null; host: string };
  /** Values generated for development, which `main.ts` warns about. */
  devDefaults: string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function outboundWebhooksConfig(e: z.infer<typeof EnvSchema>): Config['outboundWebhooks'] {
  const allowPrivateTargets = e.WEBHOOK_TARGETS_ALLOW_PRIVATE ?? e.NODE_ENV !== 'production';
  return {
    backoffMs: e.OUTBOUND_WEBHOOK_BACKOFF_MS,
    attempts: e.OUTBOUND_WEBHOOK_ATTEMPTS,
    disableAfterMs: Math.round(e.OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS * 3_600_000),
    concurrency: e.OUTBOUND_WEBHOOK_CONCURRENCY,
    timeoutMs: e.OUTBOUND_WEBHOOK_TIMEOUT_MS,
    allowPrivateTargets,
    requireHttps: e.NODE_ENV === 'production' && !allowPrivateTargets,
  };
}

/** The database named in a MongoDB URI's path, if any. */
function dbFromUri(uri: string): string | undefined {
  const match = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]+)/.exec(uri);
  return match?.[1] ? decodeURIComponent(match[1]) : undefined;
}

/**
 * Parses the environment (by default `process.env`) into a {@link Config}.
 * Throws a {@link ConfigError} listing every bad variable.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most .env files.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const devDefaults: string[] = [];
  const orDevDefault = (name: string, value: string | undefined, dev: string): string => {
    if (value) return value;
    if (e.NODE_ENV === 'production') throw new ConfigError(`Invalid configuration:\n  ${name}: required in production`);
    devDefaults.push(name);
    return dev;
  };

  const mainDb = e.MONGODB_DB ?? dbFromUri(e.MONGODB_URI) ?? 'mailroom';
  const logsUri = e.LOGS_MONGODB_URI ?? e.MONGODB_URI;
  const logsDb = e.LOGS_MONGODB_DB ?? (e.LOGS_MONGODB_URI ? dbFromUri(e.LOGS_MONGODB_URI) : undefined) ?? `${mainDb}_logs`;
  if (logsUri === e.MONGODB_URI && logsDb === mainDb) {
    throw new ConfigError('Invalid configuration:\n  LOGS_MONGODB_DB: the logs database must differ from the main database');
  }

  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    host: e.HOST,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    redisUrl: e.REDIS_URL,
    mongo: { uri: e.MONGODB_URI, db: mainDb, serverSelectionTimeoutMs: e.MONGODB_SERVER_SELECTION_TIMEOUT_MS },
    logsMongo: { uri: logsUri, db: logsDb, serverSelectionTimeoutMs: e.MONGODB_SERVER_SELECTION_TIMEOUT_MS },
    managed: { smtpUrl: e.MANAGED_SMTP_URL, from: e.MANAGED_FROM },
    operatorToken: orDevDefault('OPERATOR_TOKEN', e.OPERATOR_TOKEN, DEV_OPERATOR_TOKEN),
    secretsKey: orDevDefault('SECRETS_KEY', e.SECRETS_KEY, DEV_SECRETS_KEY),
    queuePrefix: e.QUEUE_PREFIX,
    send: {
      attempts: e.SEND_ATTEMPTS,
      backoffMs: e.SEND_BACKOFF_MS,
      concurrency: e.SEND_CONCURRENCY,
      connectionTimeoutMs: e.SMTP_CONNECTION_TIMEOUT_MS,
      greetingTimeoutMs: e.SMTP_GREETING_TIMEOUT_MS,
      socketTimeoutMs: e.SMTP_SOCKET_TIMEOUT_MS,
      poolMaxConnections: e.SMTP_POOL_MAX_CONNECTIONS,
      ignoreTls: e.SMTP_IGNORE_TLS,
      maxAttachmentsBytes: e.MAX_ATTACHMENTS_BYTES,
      testSendTimeoutMs: e.TEST_SEND_TIMEOUT_MS,
      outboxFlushIntervalMs: e.OUTBOX_FLUSH_INTERVAL_MS,
    },
    oauth: {
      google: { smtpUrl: e.GOOGLE_SMTP_URL, tokenUrl: e.GOOGLE_TOKEN_URL },
      outlook: { smtpUrl: e.OUTLOOK_SMTP_URL, tokenUrl: e.OUTLOOK_TOKEN_URL },
    },
    retentionMonths: e.RETENTION_MONTHS,
    webhooks: {
      secret: e.WEBHOOK_SECRET ?? null,
      mailgunSigningKey: e.MAILGUN_SIGNING_KEY ?? null,
      sendgridVerificationKey: e.SENDGRID_VERIFICATION_KEY ?? null,
      postmarkAuth: e.POSTMARK_WEBHOOK_AUTH
        ? {
            user: e.POSTMARK_WEBHOOK_AUTH.slice(0, e.POSTMARK_WEBHOOK_AUTH.indexOf(':')),
            pass: e.POSTMARK_WEBHOOK_AUTH.slice(e.POSTMARK_WEBHOOK_AUTH.indexOf(':') + 1),
          }
        : null,
      sesTopicArns: e.SES_TOPIC_ARNS ? e.SES_TOPIC_ARNS.split(',') : [],
    },
    tracking: { enabled: e.TRACKING_ENABLED, machineOpenWindowSeconds: e.MACHINE_OPEN_WINDOW_SECONDS },
    events: {
      concurrency: e.EVENTS_CONCURRENCY,
      batchSize: e.EVENTS_BATCH_SIZE,
      batchWaitMs: e.EVENTS_BATCH_WAIT_MS,
      attempts: e.EVENTS_ATTEMPTS,
      backoffMs: e.EVENTS_BACKOFF_MS,
      orphanSweepIntervalMs: e.ORPHAN_SWEEP_INTERVAL_MS,
    },
    retentionSchedule: e.RETENTION_SCHEDULE,
    rateLimit: { send: e.RATE_LIMIT_SEND_PER_MINUTE, admin: e.RATE_LIMIT_ADMIN_PER_MINUTE },
    outboundWebhooks: outboundWebhooksConfig(e),
    metrics: { port: e.METRICS_PORT ?? null, host: e.METRICS_HOST },
    devDefaults,
  };
}
