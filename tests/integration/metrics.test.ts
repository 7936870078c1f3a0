import { createEmailLogRepository, createLogger } from '@mailroom/shared';
import { signMailroomWebhook } from '../../apps/api/src/webhooks/mailroom';
import { startSchedulerApp, type SchedulerApp } from '../../apps/scheduler/src/scheduler-app';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startWebhookReceiver, type WebhookReceiver } from '../../infra/dev/webhook-receiver';
import { findEntry, logEntry } from '../support/log-entry';
import { parseExposition, type Exposition } from '../support/prometheus-text';
import { OPERATOR_TOKEN, startTestSystem, waitFor, type TestSystem } from '../support/system';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const SIM = 'simulator.mailroom.test';
const EVENTS_SECRET = 'whsec-test-0123456789abcdef';

describe('Prometheus metrics from the API, the worker and the scheduler', () => {
  let sink: SmtpSink;
  let receiver: WebhookReceiver;
  let sys: TestSystem;
  let worker: WorkerProcess;
  let scheduler: SchedulerApp;
  let workerUrl: string;

  beforeAll(async () => {
    sink = await startSmtpSink();
    receiver = await startWebhookReceiver();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, WEBHOOK_SECRET: EVENTS_SECRET }, worker: false });
    // The worker as its own OS process, as it runs for real: METRICS_PORT=0 picks a free port it logs.
    worker = await startWorkerProcess(sys);
    workerUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)","msg":"metrics listening"/.exec(worker.output())![1]!;
    scheduler = await startSchedulerApp(sys.config, createLogger({ level: 'silent', name: 'scheduler' }));
  });
  afterAll(async () => {
    await scheduler?.close();
    await worker?.stop();
    await sys?.close();
    await receiver?.close();
    await sink?.close();
  });

  const scrapeApi = async (): Promise<Exposition> => {
    const r = await sys.request('GET', '/metrics', { key: OPERATOR_TOKEN });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(r.body);
  };
  const scrape = async (url: string): Promise<Exposition> => {
    const r = await fetch(url);
    expect(r.status).toBe(200);
    return parseExposition(await r.text());
  };
  const scrapeAll = async () => ({
    api: await scrapeApi(),
    worker: await scrape(workerUrl),
    scheduler: await scrape(scheduler.metricsUrl!),
  });

  it('when /metrics is asked without the operator token, then 401; with it as Bearer or basic auth, then 200', async () => {
    expect((await sys.request('GET', '/metrics')).status).toBe(401);
    expect((await sys.request('GET', '/metrics', { key: 'not-the-operator-token-xx' })).status).toBe(401);
    const basic = Buffer.from(`ops:${OPERATOR_TOKEN}`).toString('base64');
    const r = await sys.request('GET', '/metrics', { headers: { authorization: `Basic ${basic}` } });
    expect(r.status).toBe(200);
    expect(r.body).toContain('# TYPE mailroom_queue_jobs gauge');
  });

  it('when an email is sent, an event applied, a webhook delivered and retention run, then each process exposes its counters moving', async () => {
    const before = await scrapeAll();
    // Process defaults in all three, and each process's own gauges.
    for (const e of Object.values(before)) {
      expect(e.types.get('process_cpu_user_seconds_total')).toBe('counter');
      expect(e.types.get('mailroom_outbound_webhooks_total')).toBe('counter');
    }
    for (const queue of ['send-email', 'retention', 'delivery-events', 'outbound-webhooks']) {
      for (const state of ['waiting', 'active', 'delayed', 'failed', 'completed']) {
        expect(
          before.api.samples.some((s) => s.name === 'mailroom_queue_jobs' && s.labels.queue === queue && s.labels.state === state),
        ).toBe(true);
      }
    }
    expect(before.worker.types.get('mailroom_outbox_pending')).toBe('gauge');
    expect(before.worker.value('mailroom_outbox_pending')).toBe(0);
    expect(before.worker.types.get('mailroom_smtp_handoff_seconds')).toBe('histogram');
    expect(before.scheduler.value('mailroom_retention_last_run_timestamp_seconds')).toBe(0);

    const ws = await sys.createWorkspace('Metrics');
    const ep = await sys.request('POST', '/v1/webhook-endpoints', { key: ws.keys.admin, body: { url: receiver.url } });
    expect(ep.status).toBe(201);
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Invoice', text: 'Hi' },
    });
    expect(r.status).toBe(202);
    const logsDb = sys.mongo.db(sys.config.logsMongo.db);
    await waitFor(async () => (await findEntry(logsDb, r.body.id))?.status === 'sent');
    const raw = JSON.stringify([{ id: 'ev-metrics-1', type: 'delivered', timestamp: new Date().toISOString(), emailId: r.body.id }]);
    expect(
      (
        await sys.request('POST', '/v1/webhooks/mailroom', {
          body: raw,
          headers: { 'mailroom-signature': signMailroomWebhook(EVENTS_SECRET, raw) },
        })
      ).status,
    ).toBe(200);
    await receiver.waitForDelivered(2);
    // Retention in the scheduler, with one entry old enough to go.
    await createEmailLogRepository(logsDb).importEntries([logEntry(ws.id, { sentAt: new Date(Date.now() - 400 * 86_400_000) })]);
    await scheduler.queue.add('retention', { now: new Date().toISOString() });

    const after = await waitFor(async () => {
      const a = await scrapeAll();
      return a.scheduler.value('mailroom_retention_last_run_timestamp_seconds') > 0 &&
        a.worker.value('mailroom_outbound_webhooks_total', { outcome: 'delivered' }) >= 2
        ? a
        : null;
    });
    const moved = (e: 'api' | 'worker' | 'scheduler', name: string, labels: Record<string, string> = {}) =>
      after[e].value(name, labels) - before[e].value(name, labels);

    expect(moved('api', 'mailroom_emails_accepted_total', { type: 'invoice' })).toBe(1);
    expect(moved('worker', 'mailroom_emails_sent_total', { send_method: 'managed' })).toBe(1);
    expect(moved('worker', 'mailroom_smtp_handoff_seconds_count')).toBe(1);
    expect(after.worker.value('mailroom_smtp_handoff_seconds_sum')).toBeGreaterThan(0);
    expect(moved('worker', 'mailroom_delivery_events_total', { provider: 'mailroom', type: 'delivered', outcome: 'applied' })).toBe(1);
    expect(moved('worker', 'mailroom_outbound_webhooks_total', { outcome: 'delivered' })).toBe(2);
    expect(moved('scheduler', 'mailroom_retention_removed_total')).toBe(1);
    expect(Math.abs(after.scheduler.value('mailroom_retention_last_run_timestamp_seconds') - Date.now() / 1000)).toBeLessThan(60);
    expect(after.api.value('mailroom_queue_jobs', { queue: 'outbound-webhooks', state: 'completed' })).toBeGreaterThanOrEqual(2);
    expect(after.api.value('mailroom_queue_jobs', { queue: 'send-email', state: 'completed' })).toBeGreaterThanOrEqual(1);

    // A permanent failure is counted with its code.
    const failed = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `bounce@${SIM}`, type: 'digest', subject: 'Digest', text: 'Hi' },
    });
    await waitFor(async () => (await findEntry(logsDb, failed.body.id))?.status === 'send_failed');
    // Counted once the entry is written and its webhook message enqueued: a moment after the entry shows.
    const failuresOf = async () =>
      (await scrape(workerUrl)).samples.filter((s) => s.name === 'mailroom_emails_send_failed_total' && s.labels.send_method === 'managed');
    const failures = await waitFor(async () => {
      const f = await failuresOf();
      return f.length > 0 ? f : null;
    });
    expect(failures.reduce((n, s) => n + s.value, 0)).toBe(1);
    expect(failures[0]!.labels.error_code).toMatch(/^[A-Z0-9_]+$/);
  });
});
