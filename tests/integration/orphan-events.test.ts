import { createLogger } from '@mailroom/shared';
import { signMailroomWebhook } from '../../apps/api/src/webhooks/mailroom';
import { startSchedulerApp, type SchedulerApp } from '../../apps/scheduler/src/scheduler-app';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';
const SECRET = 'whsec-orphans-0123456789abcdef';

describe('orphan events are applied once their entry appears', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let scheduler: SchedulerApp;

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        WEBHOOK_SECRET: SECRET,
        // Events give up fast and become orphans; the send's retry comes well after that.
        EVENTS_ATTEMPTS: '2',
        EVENTS_BACKOFF_MS: '20',
        EVENTS_BATCH_WAIT_MS: '5',
        SEND_BACKOFF_MS: '2000',
        ORPHAN_SWEEP_INTERVAL_MS: '200',
        MACHINE_OPEN_WINDOW_SECONDS: '0',
      },
    });
    scheduler = await startSchedulerApp(sys.config, createLogger({ level: 'silent', name: 'orphans' }));
  });
  afterAll(async () => {
    await scheduler?.close();
    await sys?.close();
    await sink?.close();
  });

  const logs = () => sys.mongo.db(sys.config.logsMongo.db);
  const post = (body: unknown) => {
    const raw = JSON.stringify(body);
    return sys.request('POST', '/v1/webhooks/mailroom', { body: raw, headers: { 'mailroom-signature': signMailroomWebhook(SECRET, raw) } });
  };

  it('when events arrive while the email waits for its second attempt, then they are kept as orphans and applied after it is sent', async () => {
    const ws = await sys.createWorkspace('Orphans');
    // tempfail-once@: the first attempt is refused with 451, the retry 2 s later is accepted.
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `tempfail-once+orphan@${SIM}`, type: 'invoice', subject: 'Later', text: 'Hi' },
    });
    const id = r.body.id as string;
    await waitFor(async () => {
      const e = await findEntry(logs(), id);
      return e?.status === 'queued' && e.attempts === 1;
    });
    const at = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const events = [
      { id: 'o-delivered', type: 'delivered', timestamp: at(5), emailId: id },
      { id: 'o-opened', type: 'opened', timestamp: at(9), emailId: id },
    ];
    expect((await post(events)).status).toBe(200);
    const orphans = await waitFor(
      async () => {
        const docs = await logs().collection('orphan_events').find({}).toArray();
        return docs.length === 2 ? docs : null;
      },
      10_000,
      'two orphans',
    );
    expect(orphans.map((o) => o.event.id).sort()).toEqual(['o-delivered', 'o-opened']);
    // Still waiting for its retry: nothing applied yet.
    expect((await findEntry(logs(), id))!.status).toBe('queued');

    const done = await waitFor(
      async () => {
        const e = await findEntry(logs(), id);
        return e?.status === 'opened' ? e : null;
      },
      15_000,
      'the orphans applied',
    );
    expect(done).toMatchObject({ status: 'opened', opens: 1 });
    expect(done.deliveredAt).toEqual(new Date(events[0]!.timestamp));
    expect(done.timeline.map((t: { type: string }) => t.type)).toEqual(['delivered', 'opened']);
    expect(await logs().collection('orphan_events').countDocuments({})).toBe(0);
    // A further sweep finds nothing and changes nothing.
    expect(await scheduler.orphans.sweep()).toBe(0);
    expect((await findEntry(logs(), id))!.opens).toBe(1);

    // An orphan kept since before the retention cut-off is dropped, a recent one is kept.
    const stale = (n: string, daysAgo: number) => ({
      _id: `mailroom.${n}`,
      event: { id: n, provider: 'mailroom', type: 'delivered', at: at(0), receivedAt: at(0), emailId: 'em_00000000000000000000000000' },
      reason: 'no matching email log entry',
      attempts: 2,
      recordedAt: new Date(Date.now() - daysAgo * 86_400_000),
    });
    await logs()
      .collection('orphan_events')
      .insertMany([stale('old', 200), stale('recent', 10)] as never[]);
    expect(await scheduler.orphans.sweep()).toBe(0);
    expect((await logs().collection('orphan_events').find({}).toArray()).map((o) => o._id)).toEqual(['mailroom.recent']);
  }, 40_000);
});
