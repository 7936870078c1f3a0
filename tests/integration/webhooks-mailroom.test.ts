import { createEmailEventsRepository, createEmailLogRepository, type DeliveryEvent } from '@mailroom/shared';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { signMailroomWebhook } from '../../apps/api/src/webhooks/mailroom';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { comparable, randomEvents, rng, shuffledWithDuplicates } from '../unit/email-events.gen';
import { findEntry } from '../support/log-entry';
import { sendOutcome } from '../support/send-outcome';

const SIM = 'simulator.mailroom.test';
const SECRET = 'whsec-test-0123456789abcdef';

describe('mailroom webhooks: signed events in, applied to the log', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({
      env: { MANAGED_SMTP_URL: sink.url, WEBHOOK_SECRET: SECRET, EVENTS_BACKOFF_MS: '20', EVENTS_ATTEMPTS: '3', EVENTS_BATCH_WAIT_MS: '5' },
    });
    ws = await sys.createWorkspace('Webhooks');
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  const logs = () => sys.mongo.db(sys.config.logsMongo.db);
  const entry = (id: string) => findEntry(logs(), id);
  const post = (body: unknown, sign: { secret?: string; t?: number; header?: string } = {}) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    const header = sign.header ?? signMailroomWebhook(sign.secret ?? SECRET, raw, sign.t);
    return sys.request('POST', '/v1/webhooks/mailroom', { body: raw, headers: { 'mailroom-signature': header } });
  };
  const jobCount = () => sys.redis.zcard(`${sys.config.queuePrefix}:delivery-events:completed`);
  const sent = async () => {
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Hi', html: '<p>Hi</p>', tracking: false },
    });
    return waitFor(async () => {
      const d = await entry(r.body.id);
      return d?.status === 'sent' ? d : null;
    });
  };
  const at = (s: number) => new Date(Date.now() - 60_000 + s * 1000).toISOString();

  it('when signed events arrive out of order and twice, then the entry ends opened with one delivery and one open', async () => {
    const d = await sent();
    const events = [
      { id: 'e-open-1', type: 'opened', timestamp: new Date(d.sentAt.getTime() + 20_000).toISOString(), emailId: d._id },
      { id: 'e-del-1', type: 'delivered', timestamp: new Date(d.sentAt.getTime() + 5_000).toISOString(), messageId: d.messageId },
    ];
    const t = Math.floor(Date.now() / 1000);
    expect((await post(events, { t })).status).toBe(200);
    // A redelivery, freshly signed: another timestamp, so not the same signature replayed.
    const again = await post(events, { t: t - 1 });
    expect(again.status).toBe(200);
    const done = await waitFor(async () => {
      const e = await entry(d._id);
      return e?.status === 'opened' && e.deliveredAt ? e : null;
    });
    expect(done).toMatchObject({ opens: 1, status: 'opened' });
    expect(done.timeline.map((t: { type: string }) => t.type)).toEqual(['delivered', 'opened']);
    expect(done.timeline[0]).toMatchObject({ provider: 'mailroom', late: true, changedStatus: false });
  });

  it('when the signature is tampered, expired, missing, replayed or made with another key, then 401 and nothing is queued', async () => {
    const d = await sent();
    const body = JSON.stringify({ id: 'e-x', type: 'delivered', timestamp: at(1), emailId: d._id });
    const before = await sys.redis.keys(`${sys.config.queuePrefix}:delivery-events:mailroom.e-x*`);
    const good = signMailroomWebhook(SECRET, body);
    expect((await post(body.replace('delivered', 'bounced'), { header: good })).status).toBe(401);
    expect((await post(body, { t: Math.floor(Date.now() / 1000) - 400 })).status).toBe(401);
    expect((await post(body, { secret: 'another-secret-0123456789' })).status).toBe(401);
    expect((await sys.request('POST', '/v1/webhooks/mailroom', { body })).status).toBe(401);
    expect(before).toEqual([]);
    expect((await sys.redis.keys(`${sys.config.queuePrefix}:delivery-events:mailroom.e-x*`)).length).toBe(0);
    expect((await post(body, { header: good })).status).toBe(200);
    const replay = await post(body, { header: good });
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/replay/);
  });

  it('when the body is malformed but signed, then 400; an unconfigured provider is 404', async () => {
    expect((await post('{not json')).status).toBe(400);
    expect((await post({ id: 'x', type: 'exploded', timestamp: at(1), emailId: 'em_x' })).status).toBe(400);
    expect((await sys.request('POST', '/v1/webhooks/mailgun', { body: {} })).status).toBe(404);
    expect((await sys.request('POST', '/v1/webhooks/nope', { body: {} })).status).toBe(404);
  });

  it('when an event names no known entry, then it is retried and then kept as an orphan', async () => {
    const ghost = 'em_01KZZZZZZZZZZZZZZZZZZZZZZZ';
    expect((await post({ id: 'e-orphan', type: 'delivered', timestamp: at(1), emailId: ghost })).status).toBe(200);
    const orphan = await waitFor(
      () =>
        logs()
          .collection('orphan_events')
          .findOne({ _id: 'mailroom.e-orphan' as never }),
      15_000,
      'orphan',
    );
    expect(orphan).toMatchObject({ event: { emailId: ghost, type: 'delivered' }, attempts: 3 });
  });

  it('when random event sets are applied through the real repository in random batches, orders and duplicates, then the stored entries are identical', async () => {
    const repo = createEmailEventsRepository(logs(), { machineWindowMs: 2000 });
    const logRepo = createEmailLogRepository(logs());
    for (let seed = 1; seed <= 4; seed++) {
      const r = rng(seed * 7919);
      const base = randomEvents(r, 3 + r.int(5));
      const finals: unknown[] = [];
      for (let run = 0; run < 3; run++) {
        const id = `em_01KP${String(seed).padStart(2, '0')}${run}${'A'.repeat(19)}`;
        const sentAt = '2026-03-01T10:00:00.000Z';
        await logRepo.recordOutcome(
          sendOutcome({
            id,
            workspaceId: ws.id,
            recipient: 'p@x.test',
            type: 'other',
            from: 'f@x.test',
            subject: 's',
            messageId: `<${id}@x.test>`,
            createdAt: sentAt,
            sentAt,
            content: { to: 'p@x.test', subject: 's', text: 't' },
          }),
        );
        const events: DeliveryEvent[] = shuffledWithDuplicates(r, base).map((e) => ({ ...e, emailId: id }));
        while (events.length) await repo.applyBatch(events.splice(0, 1 + r.int(4)));
        const { _id, eventsVersion, updatedAt, messageId, ...doc } = (await findEntry(logs(), id))!;
        finals.push(JSON.stringify(comparable(doc as never)));
      }
      expect(new Set(finals).size).toBe(1);
    }
  });
});
