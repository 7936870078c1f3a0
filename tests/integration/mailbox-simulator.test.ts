import { getFreePort } from '../../infra/dev/process';
import { SIMULATED_EVENTS } from '../../infra/dev/mailbox-simulator';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';

const SIM = 'simulator.mailroom.test';
const SECRET = 'whsec-simulator-0123456789abcdef';

/** Address → the status the log ends in, and the event types its timeline then holds. */
const EXPECTED: Record<string, { status: string; timeline: string[]; errorCode?: string }> = {
  delivered: { status: 'delivered', timeline: ['delivered'] },
  opened: { status: 'opened', timeline: ['delivered', 'opened'] },
  clicked: { status: 'clicked', timeline: ['delivered', 'opened', 'clicked'] },
  'bounce-async': { status: 'bounced', timeline: ['bounced'], errorCode: 'BOUNCED' },
  complained: { status: 'complained', timeline: ['delivered', 'complained'], errorCode: 'COMPLAINED' },
  delayed: { status: 'delivered', timeline: ['delivery_delayed', 'delivered'] },
};

interface TimelineEvent {
  type: string;
  provider?: string;
  machine?: boolean;
  url?: string;
  detail?: string;
}
/** The timeline without the send path's own items (queued, sent). */
const providerEvents = (detail: { timeline?: TimelineEvent[] }) => (detail.timeline ?? []).filter((e) => e.provider !== undefined);

describe('mailbox simulator: every status through the real events path', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    // The API's port is known before it starts, so the sink can be told where to post.
    const port = await getFreePort();
    sink = await startSmtpSink({ events: { webhookUrl: `http://127.0.0.1:${port}/v1/webhooks/mailroom`, secret: SECRET } });
    sys = await startTestSystem({
      // The default machine-open window (2 s) and the simulator's default timetable (open at 3 s).
      env: { PORT: String(port), MANAGED_SMTP_URL: sink.url, WEBHOOK_SECRET: SECRET, EVENTS_BACKOFF_MS: '100', EVENTS_BATCH_WAIT_MS: '5' },
    });
    ws = await sys.createWorkspace('Simulator');
  });
  afterAll(async () => {
    await sink?.close();
    await sys?.close();
  });

  it('covers every simulator address that has provider events', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(SIMULATED_EVENTS).sort());
  });

  it('when an email goes to each simulator address, then each entry ends in its final status, via signed webhooks', async () => {
    const ids: Record<string, string> = {};
    for (const mailbox of Object.keys(EXPECTED)) {
      const r = await sys.request('POST', '/v1/emails', {
        key: ws.keys.send,
        body: {
          to: `${mailbox}+run1@${SIM}`,
          type: 'invoice',
          subject: `To ${mailbox}`,
          html: '<p>Your invoice: <a href="https://billing.example.com/inv/42?x=1&amp;y=2">view it</a></p>',
        },
      });
      expect(r.status).toBe(202);
      ids[mailbox] = r.body.id;
    }
    const seen: Record<string, string> = {};
    for (const [mailbox, want] of Object.entries(EXPECTED)) {
      const detail = await waitFor(
        async () => {
          const d = await sys.request('GET', `/v1/email-logs/${ids[mailbox]}`, { key: ws.keys.admin });
          const types = providerEvents(d.body).map((e) => e.type);
          return d.body.status === want.status && want.timeline.every((t) => types.includes(t)) ? d.body : null;
        },
        20_000,
        `${mailbox}@ to reach ${want.status}`,
      );
      seen[mailbox] = detail.status;
      const events = providerEvents(detail);
      expect(events.map((e) => e.type)).toEqual(want.timeline);
      expect(events.every((e) => e.provider === 'mailroom' && !e.machine)).toBe(true);
      expect(detail.errorCode ?? null).toBe(want.errorCode ?? null);
      if (mailbox === 'clicked') {
        expect(detail.clicks).toBe(1);
        // The first link's target, as a provider reports it (our tracking link decoded).
        expect(events.find((e) => e.type === 'clicked')!.url).toBe('https://billing.example.com/inv/42?x=1&y=2');
      }
      if (mailbox === 'opened' || mailbox === 'clicked') {
        expect(detail.opens).toBe(1);
        expect(detail.openedAt).toBeTruthy();
      }
      if (mailbox === 'delayed') {
        expect(events[0]!.detail).toMatch(/^451 4\.4\.1/);
      }
    }
    // The closing note lists these.
    console.log(`simulator final statuses: ${JSON.stringify(seen)}`);

    // A hard bounce and a complaint suppress the address, as a production event does.
    const suppressions = await sys.request('GET', '/v1/suppressions', { key: ws.keys.admin });
    const reasons = Object.fromEntries(suppressions.body.items.map((s: { address: string; reason: string }) => [s.address, s.reason]));
    expect(reasons[`bounce-async+run1@${SIM}`]).toBe('hard_bounce');
    expect(reasons[`complained+run1@${SIM}`]).toBe('complaint');
  }, 60_000);
});
