import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from './logger';
import type { RedisClient as Redis } from './redis';
import { ownKey } from './redis';

/**
 * Prometheus metrics (prom-client), one registry per process so nothing is global and several
 * apps can run in one process (tests). Every process registers the same counters (each moves
 * where its work happens: accepted in the API, sent and events in the worker, retention in the
 * scheduler); the gauges read their source at scrape time.
 */
export interface Metrics {
  registry: Registry;
  emailsAccepted: Counter<'type'>;
  emailsSent: Counter<'send_method'>;
  emailsSendFailed: Counter<'send_method' | 'error_code'>;
  smtpHandoffSeconds: Histogram;
  deliveryEvents: Counter<'provider' | 'type' | 'outcome'>;
  outboundWebhooks: Counter<'outcome'>;
  retentionRemoved: Counter;
}

/** What the gauges read when scraped; a process gives the sources it has. */
export interface MetricSources {
  /** `mailroom_outbox_pending`: outcomes staged in Redis, not yet in the logs database. */
  outboxSize?: () => Promise<number>;
  /** `mailroom_queue_jobs{queue,state}`, from BullMQ's own exporter. */
  queues?: readonly Queue[];
  /** `mailroom_retention_last_run_timestamp_seconds`: the end of the last run (any scheduler), null before the first. */
  retentionLastRun?: () => Promise<number | null>;
}

const BULLMQ_JOB_COUNT = /^bullmq_job_count\{queue="((?:[^"\\]|\\.)*)", state="([^"]*)"[^}]*\} (\d+)$/;

export function createMetrics(sources: MetricSources = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const metrics: Metrics = {
    registry,
    emailsAccepted: new Counter({
      name: 'mailroom_emails_accepted_total',
      help: 'Emails accepted by the API (202), by type',
      labelNames: ['type'],
      registers,
    }),
    emailsSent: new Counter({
      name: 'mailroom_emails_sent_total',
      help: 'Emails the SMTP server accepted, by send method',
      labelNames: ['send_method'],
      registers,
    }),
    emailsSendFailed: new Counter({
      name: 'mailroom_emails_send_failed_total',
      help: 'Emails that finally failed to send, by send method and error code',
      labelNames: ['send_method', 'error_code'],
      registers,
    }),
    smtpHandoffSeconds: new Histogram({
      name: 'mailroom_smtp_handoff_seconds',
      help: 'Time of one SMTP hand-off (the whole conversation of one send attempt)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    deliveryEvents: new Counter({
      name: 'mailroom_delivery_events_total',
      help: 'Delivery events processed by the worker, by provider, event type and outcome (applied, duplicate, orphaned, retried, failed)',
      labelNames: ['provider', 'type', 'outcome'],
      registers,
    }),
    outboundWebhooks: new Counter({
      name: 'mailroom_outbound_webhooks_total',
      help: 'Outbound webhook delivery attempts by outcome (delivered, retrying, failed, gone, refused, skipped)',
      labelNames: ['outcome'],
      registers,
    }),
    retentionRemoved: new Counter({ name: 'mailroom_retention_removed_total', help: 'Log entries removed by retention', registers }),
  };

  if (sources.outboxSize) {
    const size = sources.outboxSize;
    new Gauge({
      name: 'mailroom_outbox_pending',
      help: 'Send outcomes staged in Redis and not yet written to the logs database',
      registers,
      async collect() {
        this.set(await size());
      },
    });
  }
  if (sources.queues) {
    const queues = sources.queues;
    new Gauge({
      name: 'mailroom_queue_jobs',
      help: 'Jobs per queue and state (BullMQ Queue.exportPrometheusMetrics)',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        const texts = await Promise.all(queues.map((q) => q.exportPrometheusMetrics()));
        for (const line of texts.join('\n').split('\n')) {
          const m = BULLMQ_JOB_COUNT.exec(line);
          if (m) this.set({ queue: m[1]!.replace(/\\(.)/g, '$1'), state: m[2]! }, Number(m[3]));
        }
      },
    });
  }
  if (sources.retentionLastRun) {
    const lastRun = sources.retentionLastRun;
    new Gauge({
      name: 'mailroom_retention_last_run_timestamp_seconds',
      help: 'Unix time the last retention run finished (0 before the first)',
      registers,
      async collect() {
        this.set((await lastRun()) ?? 0);
      },
    });
  }
  return metrics;
}

/** The Redis key holding the end of the last retention run (unix seconds), shared by every scheduler. */
export function retentionLastRunKey(prefix: string): string {
  return ownKey(prefix, 'retention-last-run');
}

/** Marks a finished retention run (the scheduler's, or an operator's through the API). */
export async function recordRetentionRun(redis: Redis, prefix: string, at: Date = new Date()): Promise<void> {
  await redis.set(retentionLastRunKey(prefix), String(Math.floor(at.getTime() / 1000)));
}

export async function readRetentionLastRun(redis: Redis, prefix: string): Promise<number | null> {
  const v = await redis.get(retentionLastRunKey(prefix));
  return v === null ? null : Number(v);
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (text exposition format) for the worker and the scheduler. */
export async function startMetricsServer(registry: Registry, host: string, port: number, log: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        log.warn({ err }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`;
  log.info({ url }, 'metrics listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
