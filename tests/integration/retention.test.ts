import { Queue } from 'bullmq';
import {
  createEmailLogRepository,
  createLogger,
  newId,
  FINISHED_JOB_RETENTION,
  QUEUES,
  RETENTION_SCHEDULER_ID,
  runRetention,
  type EmailLogDoc,
  type EmailLogRepository,
} from '@mailroom/shared';
import { startSchedulerApp, type SchedulerApp } from '../../apps/scheduler/src/scheduler-app';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { contentFor, logEntry } from './email-log-fixtures';
import { findEntries } from '../support/log-entry';
import { OPERATOR_TOKEN, startTestSystem, waitFor, type TestSystem } from '../support/system';

const silent = createLogger({ level: 'silent', name: 'retention-test' });

/** A log document as the worker writes it, sent at `sentAt`. */
const entry = (id: string, workspaceId: string, sentAt: Date): EmailLogDoc =>
  logEntry(workspaceId, { _id: id, sentAt, recipient: `${id}@example.com`, subject: `Invoice ${id}` });

describe('retention: the six-month cleanup', () => {
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url }, worker: false });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  const logsDb = () => sys.mongo.db(sys.config.logsMongo.db);
  // As the send path writes them: entries and their content.
  const insert = (docs: EmailLogDoc[]) => createEmailLogRepository(logsDb()).importEntries(docs, docs.map(contentFor));
  const ids = async (collection: string) =>
    (
      await logsDb()
        .collection(collection)
        .find({}, { projection: { _id: 1 } })
        .toArray()
    )
      .map((d) => String(d._id))
      .sort();
  const clear = async () => {
    for (const c of ['email_logs', 'email_contents', 'activity_log']) await logsDb().collection(c).deleteMany({});
  };

  it('when an entry is one second past six months, then it goes; one second inside, it stays (31 August → 28 February)', async () => {
    await clear();
    const now = '2026-08-31T03:00:00.000Z';
    const cutoff = Date.parse('2026-02-28T03:00:00.000Z');
    await insert([
      entry('em_old', 'ws_a', new Date(cutoff - 1000)),
      entry('em_edge', 'ws_a', new Date(cutoff)),
      entry('em_new', 'ws_a', new Date(cutoff + 1000)),
    ]);
    const r = await sys.request('POST', '/v1/admin/retention/run', { key: OPERATOR_TOKEN, body: { now } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ removed: 1, cutoff: '2026-02-28T03:00:00.000Z' });
    expect(await ids('email_logs')).toEqual(['em_edge', 'em_new']);
    expect(await ids('email_contents')).toEqual(['em_edge', 'em_new']);
  });

  it('when months have different lengths, then the cut-off follows the calendar (31 March → 30 September, leap February)', async () => {
    await clear();
    await insert([
      entry('em_sep29', 'ws_a', new Date('2025-09-29T23:59:59.000Z')),
      entry('em_sep30', 'ws_a', new Date('2025-09-30T00:00:01.000Z')),
    ]);
    const r = await sys.request('POST', '/v1/admin/retention/run', { key: OPERATOR_TOKEN, body: { now: '2026-03-31T00:00:00.000Z' } });
    expect(r.body).toMatchObject({ removed: 1, cutoff: '2025-09-30T00:00:00.000Z' });
    expect(await ids('email_logs')).toEqual(['em_sep30']);

    await clear();
    await insert([
      entry('em_feb28', 'ws_a', new Date('2028-02-28T12:00:00.000Z')),
      entry('em_mar1', 'ws_a', new Date('2028-03-01T12:00:00.000Z')),
    ]);
    const leap = await sys.request('POST', '/v1/admin/retention/run', { key: OPERATOR_TOKEN, body: { now: '2028-08-31T03:00:00.000Z' } });
    expect(leap.body.cutoff).toBe('2028-02-29T03:00:00.000Z');
    expect(await ids('email_logs')).toEqual(['em_mar1']);
  });

  it('when the request is not an operator’s or the date is bad, then 401 / 400', async () => {
    expect((await sys.request('POST', '/v1/admin/retention/run', { body: {} })).status).toBe(401);
    const bad = await sys.request('POST', '/v1/admin/retention/run', { key: OPERATOR_TOKEN, body: { now: 'yesterday' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].path).toBe('body.now');
  });

  it('when a cleanup is interrupted halfway, then running it again finishes the job with nothing left behind', async () => {
    await clear();
    const old = new Date('2025-01-01T00:00:00.000Z');
    const docs = Array.from({ length: 250 }, (_, i) =>
      entry(`em_old_${String(i).padStart(4, '0')}`, 'ws_a', new Date(old.getTime() + i * 1000)),
    );
    await insert([...docs, entry('em_fresh', 'ws_a', new Date('2026-11-01T00:00:00.000Z'))]);
    const real = createEmailLogRepository(logsDb());
    let steps = 0;
    // Slices go newest first; after the first one the cleanup dies while removing the 100 oldest
    // entries, before their content.
    const crashing: EmailLogRepository = {
      ...real,
      async *removeSentBefore(cutoff, batch) {
        for await (const step of real.removeSentBefore(cutoff, batch)) {
          if (step.removed > 0) {
            await logsDb()
              .collection('email_logs')
              .deleteMany({ sentAt: { $lt: new Date(old.getTime() + 100_000) } });
            throw new Error('worker killed');
          }
          yield step;
        }
      },
    };
    const now = new Date('2026-11-27T03:00:00.000Z');
    await expect(runRetention({ logs: crashing, log: silent, now, months: 6, batchSize: 100 })).rejects.toThrow('worker killed');
    const left = (await ids('email_logs')).length;
    const contentLeft = (await ids('email_contents')).length;
    expect(left).toBeGreaterThan(1);
    expect(contentLeft - left).toBe(100); // the content of the 100 entries the crash removed

    const again = await runRetention({ logs: real, log: silent, now, months: 6, batchSize: 100 });
    expect(again.removed).toBe(left - 1); // all but the fresh one
    expect(again.contentRemoved).toBe(contentLeft - 1); // with their entries, and the leftovers
    expect(await ids('email_logs')).toEqual(['em_fresh']);
    expect(await ids('email_contents')).toEqual(['em_fresh']);
    // Idempotent: a third run removes nothing.
    expect(await runRetention({ logs: real, log: silent, now, months: 6, batchSize: 100 })).toMatchObject({
      removed: 0,
      contentRemoved: 0,
    });
  });

  it('when many entries have expired, then they go in batches and the cut-off keeps the newer ones', async () => {
    await clear();
    const cutoff = Date.parse('2026-05-27T03:00:00.000Z');
    const at = (iso: string, i = 0) => new Date(Date.parse(iso) + i * 1000);
    await insert([
      ...Array.from({ length: 30 }, (_, i) => entry(`em_small_${i}`, i % 2 ? 'ws_a' : 'ws_b', at('2026-03-10T08:00:00.000Z', i * 600))),
      ...Array.from({ length: 230 }, (_, i) => entry(`em_busy_${i}`, 'ws_a', at('2026-05-26T17:00:00.000Z', i))),
      ...Array.from({ length: 40 }, (_, i) => entry(`em_cut_${i}`, 'ws_b', at('2026-05-27T02:59:40.000Z', i))),
    ]);
    const r = await runRetention({
      logs: createEmailLogRepository(logsDb()),
      log: silent,
      now: new Date('2026-11-27T03:00:00.000Z'),
      months: 6,
      batchSize: 100,
    });
    expect(r).toMatchObject({ removed: 30 + 230 + 20, contentRemoved: 30 + 230 + 20, cutoff: new Date(cutoff).toISOString() });
    expect(await ids('email_logs')).toEqual(Array.from({ length: 20 }, (_, i) => `em_cut_${i + 20}`).sort());
    expect(await ids('email_contents')).toEqual(Array.from({ length: 20 }, (_, i) => `em_cut_${i + 20}`).sort());
  });

  it('when an email accepted before the cut-off was sent (retried) after it, then it stays with its content', async () => {
    await clear();
    // Accepted at `accepted` (the time in the id), sent at `sent`.
    const email = (accepted: string, sent: string, i = 0) =>
      logEntry('ws_a', { _id: newId('em', Date.parse(accepted) + i * 1000), sentAt: new Date(Date.parse(sent) + i * 1000) });
    const march = Array.from({ length: 20 }, (_, i) => email('2026-03-10T00:00:00Z', '2026-03-10T00:00:00Z', i));
    // Accepted on 26 May, sent (after retries) on 28 May: after the cut-off of 27 May, 03:00.
    const late = email('2026-05-26T23:00:00Z', '2026-05-28T00:00:00Z');
    const fresh = email('2026-11-20T00:00:00Z', '2026-11-20T00:00:00Z');
    // As the send path leaves them: the content's sentAt is its entry's latest attempt.
    await createEmailLogRepository(logsDb()).importEntries([...march, late, fresh], [...march, late, fresh].map(contentFor));

    const run = () =>
      runRetention({
        logs: createEmailLogRepository(logsDb()),
        log: silent,
        now: new Date('2026-11-27T03:00:00.000Z'),
        months: 6,
        batchSize: 10,
      });
    const r = await run();
    expect(r).toMatchObject({ removed: 20, contentRemoved: 20 });
    expect((await findEntries(logsDb())).map((d) => d._id).sort()).toEqual([late._id, fresh._id].sort());
    expect(await ids('email_contents')).toEqual([late._id, fresh._id].sort());
    // The log still pages through what is left, newest first.
    const page = await createEmailLogRepository(logsDb()).list('ws_a', {}, { limit: 10 });
    expect(page.map((d) => d._id)).toEqual([fresh._id, late._id]);
    expect(await run()).toMatchObject({ removed: 0, contentRemoved: 0 });
  });

  it('when activity-log entries are older than six months, then they follow the same retention', async () => {
    await clear();
    await logsDb()
      .collection('activity_log')
      .insertMany([
        {
          _id: 'act_old' as never,
          workspaceId: 'ws_a',
          action: 'email.resent',
          actorKeyId: 'key_1',
          target: 'em_1',
          details: null,
          at: new Date('2025-01-01T00:00:00Z'),
        },
        {
          _id: 'act_new' as never,
          workspaceId: 'ws_a',
          action: 'email.resent',
          actorKeyId: 'key_1',
          target: 'em_2',
          details: null,
          at: new Date('2026-11-01T00:00:00Z'),
        },
      ]);
    const r = await sys.request('POST', '/v1/admin/retention/run', { key: OPERATOR_TOKEN, body: { now: '2026-11-27T03:00:00.000Z' } });
    expect(r.body.activityRemoved).toBe(1);
    expect(await ids('activity_log')).toEqual(['act_new']);
  });

  it('when every queue is created, then finished jobs expire from Redis', () => {
    expect(FINISHED_JOB_RETENTION.removeOnComplete.age).toBeGreaterThan(0);
    expect(FINISHED_JOB_RETENTION.removeOnFail.age).toBeGreaterThan(0);
  });
});

describe('retention: the scheduler', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  const schedulers: SchedulerApp[] = [];

  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(async () => {
    await sink?.close();
  });
  afterEach(async () => {
    for (const s of schedulers.splice(0)) await s.close();
    await sys?.close();
  });

  it('when the scheduler starts, then it registers one daily 03:00 UTC job scheduler', async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url }, worker: false });
    schedulers.push(await startSchedulerApp(sys.config, silent));
    const list = await schedulers[0]!.queue.getJobSchedulers();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ key: RETENTION_SCHEDULER_ID, pattern: '0 3 * * *', tz: 'UTC' });
    const next = new Date(list[0]!.next!);
    expect(next.getUTCHours()).toBe(3);
    expect(next.getUTCMinutes()).toBe(0);
    const queue = schedulers[0]!.queue as Queue;
    expect(queue.defaultJobOptions.removeOnComplete).toEqual(FINISHED_JOB_RETENTION.removeOnComplete);
    expect(queue.defaultJobOptions.removeOnFail).toEqual(FINISHED_JOB_RETENTION.removeOnFail);
  });

  it('when two schedulers run at once, then each tick makes exactly one cleanup job', async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, RETENTION_SCHEDULE: '* * * * * *' }, worker: false });
    const [a, b] = await Promise.all([startSchedulerApp(sys.config, silent), startSchedulerApp(sys.config, silent)]);
    schedulers.push(a!, b!);
    const started = Date.now();
    const queue = new Queue(QUEUES.retention, { connection: sys.redis, prefix: sys.config.queuePrefix });
    try {
      await waitFor(async () => (await queue.getCompletedCount()) >= 3, 15_000, 'three ticks');
      await a!.close();
      await b!.close();
      schedulers.length = 0;
      const elapsedTicks = Math.ceil((Date.now() - started) / 1000) + 1;
      const jobs = await queue.getJobs(['completed', 'failed', 'active', 'wait', 'delayed']);
      const finished = jobs.filter((j) => j.finishedOn);
      const ticks = finished.map((j) => j.id);
      expect(new Set(ticks).size).toBe(ticks.length);
      expect(finished.length).toBeLessThanOrEqual(elapsedTicks);
      expect(await queue.getJobSchedulers()).toHaveLength(1);
      // One job per tick: job ids carry the tick's time, and ticks are a second apart.
      const times = finished.map((j) => Number(String(j.id).split(':').pop())).sort((x, y) => x - y);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1000);
    } finally {
      await queue.close();
    }
  });
});
