import { Webhook } from 'standardwebhooks';
import {
  createOutbox,
  createSecretBox,
  createWebhookEndpointRepository,
  createWebhookPoster,
  WEBHOOK_MESSAGE_TYPES,
  webhookMessageId,
  type WebhookEndpointDoc,
} from '@mailroom/shared';
import { signMailroomWebhook } from '../../apps/api/src/webhooks/mailroom';
import { startFerretdb } from '../../infra/dev/ferretdb';
import { startRedis } from '../../infra/dev/redis';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../../infra/dev/webhook-receiver';
import { findEntry } from '../support/log-entry';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';

const SIM = 'simulator.mailroom.test';
const EVENTS_SECRET = 'whsec-test-0123456789abcdef';

type Workspace = { id: string; keys: { send: string; admin: string } };

/** What an integrator does with each request: verify with the Standard Webhooks library, then parse. */
function verified(secret: string, r: ReceivedWebhook): { type: string; timestamp: string; data: any } {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': r.id,
    'webhook-timestamp': r.timestamp,
    'webhook-signature': r.signature,
  }) as { type: string; timestamp: string; data: any };
}

async function send(sys: TestSystem, ws: Workspace, to: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await sys.request('POST', '/v1/emails', {
    key: ws.keys.send,
    body: { to, type: 'invoice', subject: 'Invoice INV-7', html: '<p>Hi</p>', tracking: false, ...extra },
  });
  expect(r.status).toBe(202);
  return r.body.id;
}

const entryOf = (sys: TestSystem, id: string) => findEntry(sys.mongo.db(sys.config.logsMongo.db), id);

/** Delivery events in Mailroom's own signed format, as a provider would post them. */
function postEvents(sys: TestSystem, events: unknown[]) {
  const raw = JSON.stringify(events);
  return sys.request('POST', '/v1/webhooks/mailroom', {
    body: raw,
    headers: { 'mailroom-signature': signMailroomWebhook(EVENTS_SECRET, raw) },
  });
}

async function createEndpoint(sys: TestSystem, ws: Workspace, body: Record<string, unknown>) {
  const r = await sys.request('POST', '/v1/webhook-endpoints', { key: ws.keys.admin, body });
  expect(r.status).toBe(201);
  return r.body as { id: string; secret: string; url: string; events: string[]; enabled: boolean };
}

describe('outbound webhooks: status changes pushed to the application, signed and retried', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  const logLines: string[] = [];

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        WEBHOOK_SECRET: EVENTS_SECRET,
        EVENTS_BACKOFF_MS: '20',
        EVENTS_ATTEMPTS: '3',
        EVENTS_BATCH_WAIT_MS: '5',
        OUTBOUND_WEBHOOK_BACKOFF_MS: '500',
        OUTBOUND_WEBHOOK_ATTEMPTS: '10',
        LOG_LEVEL: 'debug',
      },
      logDestination: { write: (line: string) => void logLines.push(line) },
    });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  const entry = (id: string) => entryOf(sys, id);

  it('when an email is sent and its events arrive, then the receiver verifies one message per change with standardwebhooks, machine opens none', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const ws = await sys.createWorkspace('Receiver');
      const ep = await createEndpoint(sys, ws, { url: receiver.url, description: 'app' });
      expect(ep.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(ep.secret.slice(6), 'base64')).toHaveLength(32);
      expect(ep).toMatchObject({ url: receiver.url, enabled: true, events: [...WEBHOOK_MESSAGE_TYPES] });

      const id = await send(sys, ws, `delivered@${SIM}`, { reference: { kind: 'invoice', id: 'INV-7' }, metadata: { order: 42 } });
      const sent = await waitFor(async () => {
        const e = await entry(id);
        return e?.status === 'sent' ? e : null;
      });
      const at = (s: number) => new Date(sent.sentAt.getTime() + s * 1000).toISOString();
      expect(
        (
          await postEvents(sys, [
            { id: 'ev-delayed', type: 'delivery_delayed', timestamp: at(1), emailId: id, detail: 'greylisted' },
            { id: 'ev-delivered', type: 'delivered', timestamp: at(2), emailId: id },
            // Within MACHINE_OPEN_WINDOW_SECONDS of sending: a machine open, never a message.
            { id: 'ev-open-machine', type: 'opened', timestamp: at(0.5), emailId: id },
            { id: 'ev-open', type: 'opened', timestamp: at(30), emailId: id },
            { id: 'ev-click', type: 'clicked', timestamp: at(40), emailId: id, url: 'https://example.com/pay' },
            { id: 'ev-bounce', type: 'bounced', timestamp: at(50), emailId: id, bounceType: 'hard', detail: '550 5.1.1 no such user' },
          ])
        ).status,
      ).toBe(200);

      const got = await receiver.waitForDelivered(6);
      await new Promise((r) => setTimeout(r, 500));
      const messages = receiver.received.map((r) => ({ id: r.id, ...verified(ep.secret, r) }));
      expect(messages.map((m) => m.type).sort()).toEqual(
        ['email.bounced', 'email.clicked', 'email.delivered', 'email.delivery_delayed', 'email.opened', 'email.sent'].sort(),
      );
      expect(new Set(got.map((r) => r.id)).size).toBe(6);
      const sentMsg = messages.find((m) => m.type === 'email.sent')!;
      expect(sentMsg.data).toMatchObject({
        id,
        status: 'sent',
        recipient: `delivered@${SIM}`,
        type: 'invoice',
        sendMethod: 'managed',
        reference: { kind: 'invoice', id: 'INV-7' },
        metadata: { order: 42 },
        errorCode: null,
        event: null,
      });
      expect(sentMsg.timestamp).toBe(sent.sentAt.toISOString());
      const bounced = messages.find((m) => m.type === 'email.bounced')!;
      expect(bounced.data).toMatchObject({
        id,
        status: 'bounced',
        errorCode: 'BOUNCED',
        event: { provider: 'mailroom', at: at(50), detail: '550 5.1.1 no such user', bounceType: 'hard' },
      });
      expect(messages.find((m) => m.type === 'email.clicked')!.data.event).toMatchObject({ url: 'https://example.com/pay' });
      expect(messages.find((m) => m.type === 'email.opened')!.data.event.at).toBe(at(30));
      for (const r of receiver.received) {
        expect(r.id).toMatch(/^msg_/);
        expect(Math.abs(Number(r.timestamp) - Date.now() / 1000)).toBeLessThan(60);
        expect(r.signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      }

      // A send failure too: a permanent 5xx becomes email.send_failed with its code and hint.
      const failedId = await send(sys, ws, `bounce@${SIM}`);
      const [failed] = await waitFor(async () => {
        const m = receiver.received.filter((r) => r.status === 200 && verified(ep.secret, r).data.id === failedId);
        return m.length ? m : null;
      });
      expect(verified(ep.secret, failed!)).toMatchObject({
        type: 'email.send_failed',
        data: { status: 'send_failed', errorCode: expect.any(String) },
      });
      expect(verified(ep.secret, failed!).data.errorHint).toEqual(expect.any(String));
    } finally {
      await receiver.close();
    }
  });

  it('when the receiver answers 500, then the message comes again with the same webhook-id, and the attempts are listed', async () => {
    const receiver = await startWebhookReceiver();
    try {
      receiver.respond = ({ seen }) => (seen < 2 ? 500 : 204);
      const ws = await sys.createWorkspace('Flaky');
      const ep = await createEndpoint(sys, ws, { url: receiver.url, events: ['email.sent'] });
      const id = await send(sys, ws, `delivered@${SIM}`);
      const [ok] = await receiver.waitForDelivered(1, 20_000);
      const tries = receiver.received.filter((r) => r.id === ok!.id);
      expect(tries.map((r) => r.status)).toEqual([500, 500, 204]);
      expect(new Set(tries.map((r) => r.body)).size).toBe(1);
      for (const t of tries) expect(verified(ep.secret, t).data.id).toBe(id);

      const list = await waitFor(async () => {
        const r = await sys.request('GET', `/v1/webhook-endpoints/${ep.id}/deliveries`, { key: ws.keys.admin });
        return r.body.items?.length === 3 ? r.body.items : null;
      });
      expect(list.map((d: any) => [d.attempt, d.statusCode, d.outcome])).toEqual([
        [3, 204, 'delivered'],
        [2, 500, 'retrying'],
        [1, 500, 'retrying'],
      ]);
      expect(list[1]).toMatchObject({
        messageId: ok!.id,
        type: 'email.sent',
        error: 'HTTP 500: answered 500',
        nextRetryAt: expect.any(String),
      });
      expect(list[0].nextRetryAt).toBeNull();
      expect(list[0].durationMs).toEqual(expect.any(Number));

      // Replay: the same message (same webhook-id), signed anew.
      const replay = await sys.request('POST', `/v1/webhook-endpoints/${ep.id}/deliveries/${ok!.id}/replay`, { key: ws.keys.admin });
      expect(replay.status).toBe(202);
      const again = await receiver.waitForDelivered(2);
      expect(again[1]!.id).toBe(ok!.id);
      expect(again[1]!.body).toBe(ok!.body);
      const unknown = await sys.request('POST', `/v1/webhook-endpoints/${ep.id}/deliveries/msg_AAAAAAAAAAAAAAAAAAAAAAAAAA/replay`, {
        key: ws.keys.admin,
      });
      expect(unknown.status).toBe(404);
      // Only email.sent was asked for: no other type reached it.
      expect(receiver.received.every((r) => verified(ep.secret, r).type === 'email.sent')).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('when the receiver answers 410 Gone, then the endpoint is disabled at once, in the activity log, and gets nothing more', async () => {
    const receiver = await startWebhookReceiver();
    try {
      receiver.respond = () => 410;
      const ws = await sys.createWorkspace('Gone');
      const ep = await createEndpoint(sys, ws, { url: receiver.url });
      await send(sys, ws, `delivered@${SIM}`);
      const disabled = await waitFor(async () => {
        const r = await sys.request('GET', `/v1/webhook-endpoints/${ep.id}`, { key: ws.keys.admin });
        return r.body.enabled === false ? r.body : null;
      });
      expect(disabled).toMatchObject({ disabledReason: 'gone', disabledAt: expect.any(String) });
      expect(receiver.received).toHaveLength(1);
      // The worker disables the endpoint, announces the change (Redis), then writes the activity
      // entry: the endpoint can read as disabled a moment before its entry is there.
      const activity = await waitFor(async () => {
        const r = await sys.request('GET', '/v1/activity', { key: ws.keys.admin });
        return r.body.items.some((a: any) => a.action === 'webhook_endpoint.disabled') ? r : null;
      });
      expect(activity.body.items.map((a: any) => a.action)).toEqual(
        expect.arrayContaining(['webhook_endpoint.created', 'webhook_endpoint.disabled']),
      );
      expect(activity.body.items.find((a: any) => a.action === 'webhook_endpoint.disabled')).toMatchObject({
        actorKeyId: 'system',
        target: ep.id,
        details: { reason: 'gone', statusCode: 410 },
      });
      const id = await send(sys, ws, `delivered@${SIM}`);
      await waitFor(async () => (await entry(id))?.status === 'sent');
      await new Promise((r) => setTimeout(r, 1000));
      expect(receiver.received).toHaveLength(1);

      // Enabled again by an admin: messages flow again.
      receiver.respond = () => 200;
      const patched = await sys.request('PATCH', `/v1/webhook-endpoints/${ep.id}`, { key: ws.keys.admin, body: { enabled: true } });
      expect(patched.body).toMatchObject({ enabled: true, disabledReason: null });
      await send(sys, ws, `delivered@${SIM}`);
      await receiver.waitForDelivered(1);
    } finally {
      await receiver.close();
    }
  });

  it('when the receiver is down for 30 s, then it gets every message afterwards, none missing', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const ws = await sys.createWorkspace('Down');
      const ep = await createEndpoint(sys, ws, { url: receiver.url, events: ['email.sent'] });
      await receiver.stop();
      const downAt = Date.now();
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) ids.push(await send(sys, ws, `delivered+${i}@${SIM}`));
      await waitFor(async () => (await Promise.all(ids.map(entry))).every((e) => e?.status === 'sent'), 20_000, 'all sent');
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downAt))));
      await receiver.start();
      const got = await receiver.waitForDelivered(60, 60_000);
      const emailIds = new Set(got.map((r) => verified(ep.secret, r).data.id));
      expect([...emailIds].sort()).toEqual([...ids].sort());
      expect(new Set(got.map((r) => r.id)).size).toBe(60);
    } finally {
      await receiver.close();
    }
  }, 120_000);

  it('when the secret is rotated, then both secrets sign for the overlap, and no secret appears in a response or a log line after creation', async () => {
    const receiver = await startWebhookReceiver();
    try {
      receiver.respond = ({ seen }) => (seen === 0 ? 503 : 200);
      const ws = await sys.createWorkspace('Secrets');
      const ep = await createEndpoint(sys, ws, { url: receiver.url, events: ['email.sent'] });
      const rotated = await sys.request('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { key: ws.keys.admin });
      expect(rotated.status).toBe(200);
      const secret2 = rotated.body.secret as string;
      expect(secret2).toMatch(/^whsec_/);
      expect(secret2).not.toBe(ep.secret);
      expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23.9 * 3600_000);

      await send(sys, ws, `delivered@${SIM}`);
      const [msg] = await receiver.waitForDelivered(1);
      expect(msg!.signature.split(' ')).toHaveLength(2);
      expect(verified(ep.secret, msg!).type).toBe('email.sent');
      expect(verified(secret2, msg!).type).toBe('email.sent');
      expect(() => verified(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, msg!)).toThrow();

      const responses = await Promise.all([
        sys.request('GET', '/v1/webhook-endpoints', { key: ws.keys.admin }),
        sys.request('GET', `/v1/webhook-endpoints/${ep.id}`, { key: ws.keys.admin }),
        sys.request('PATCH', `/v1/webhook-endpoints/${ep.id}`, { key: ws.keys.admin, body: { description: 'renamed' } }),
        sys.request('GET', `/v1/webhook-endpoints/${ep.id}/deliveries`, { key: ws.keys.admin }),
        sys.request('GET', '/v1/activity', { key: ws.keys.admin }),
      ]);
      for (const r of responses) {
        expect(r.status).toBe(200);
        const text = JSON.stringify(r.body);
        expect(text).not.toContain(ep.secret.slice(6, 30));
        expect(text).not.toContain(secret2.slice(6, 30));
      }
      expect(responses[1]!.body.secretLast4).toBe(secret2.slice(-4));
      // Sealed at rest, like SMTP passwords.
      const stored = await sys.mongo
        .db(sys.config.mongo.db)
        .collection('webhook_endpoints')
        .findOne({ _id: ep.id as never });
      expect(JSON.stringify(stored)).not.toContain(secret2.slice(6, 30));
      expect(stored!.sealedSecret).toMatch(/^v1\./);
      // The log lines (debug level, API and worker, failures included) name neither secret.
      expect(logLines.length).toBeGreaterThan(10);
      const all = logLines.join('');
      expect(all).toContain(ep.id);
      expect(all).not.toContain(ep.secret.slice(6, 30));
      expect(all).not.toContain(secret2.slice(6, 30));
    } finally {
      await receiver.close();
    }
  });

  it('when the body or the id is wrong, then 400 or 404 names what is wrong', async () => {
    const ws = await sys.createWorkspace('Bad input');
    const bad = async (method: string, path: string, body: unknown, field: string, status = 400) => {
      const r = await sys.request(method, path, { key: ws.keys.admin, body });
      expect(r.status).toBe(status);
      if (status === 400) expect(r.body.error.fields.map((f: { path: string }) => f.path)).toContain(field);
    };
    await bad('POST', '/v1/webhook-endpoints', { url: 'ftp://example.com/x' }, 'body.url');
    await bad('POST', '/v1/webhook-endpoints', { url: 'https://example.com/x', events: ['email.nope'] }, 'body.events.0');
    await bad('POST', '/v1/webhook-endpoints', { url: 'https://example.com/x', secret: 'mine' }, 'body');
    await bad('PATCH', '/v1/webhook-endpoints/we_00000000000000000000000000', {}, 'body');
    await bad('PATCH', '/v1/webhook-endpoints/nope', { enabled: false }, 'params.id');
    await bad('GET', '/v1/webhook-endpoints/we_00000000000000000000000000', undefined, '', 404);
    const send = await sys.request('GET', '/v1/webhook-endpoints', { key: ws.keys.send });
    expect(send.status).toBe(403);
  });
});

describe('outbound webhooks: SSRF filtering with WEBHOOK_TARGETS_ALLOW_PRIVATE=false', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    sink = await startSmtpSink();
    receiver = await startWebhookReceiver();
    sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        WEBHOOK_TARGETS_ALLOW_PRIVATE: 'false',
        OUTBOUND_WEBHOOK_BACKOFF_MS: '50',
        OUTBOUND_WEBHOOK_ATTEMPTS: '3',
      },
    });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
    await receiver?.close();
  });

  it('when a target is loopback, private, link-local (metadata) or a name resolving to loopback, then registration is refused', async () => {
    const ws = await sys.createWorkspace('SSRF');
    for (const url of [
      `http://127.0.0.1:${receiver.port}/hooks`,
      'http://10.0.0.1/hooks',
      'http://169.254.169.254/latest/meta-data/',
      `http://localhost:${receiver.port}/hooks`,
      'http://[::1]/hooks',
      'http://192.168.1.20/hooks',
    ]) {
      const r = await sys.request('POST', '/v1/webhook-endpoints', { key: ws.keys.admin, body: { url } });
      expect({ url, status: r.status }).toEqual({ url, status: 400 });
      expect(r.body.error).toMatchObject({ code: 'target_not_allowed', fields: [{ path: 'body.url' }] });
    }
    const patchTarget = await sys.request('PATCH', '/v1/webhook-endpoints/we_00000000000000000000000000', {
      key: ws.keys.admin,
      body: { url: 'http://10.0.0.1/' },
    });
    expect(patchTarget.status).toBe(400);
    expect(receiver.received).toHaveLength(0);
  });

  it('when a registered target resolves to loopback at delivery time, then the delivery is refused and nothing is sent', async () => {
    // As if the name had resolved to a public address at registration and points at loopback now.
    const ws = await sys.createWorkspace('Rebound');
    const repo = createWebhookEndpointRepository(sys.mongo.db(sys.config.mongo.db), createSecretBox(sys.config.secretsKey));
    const { endpoint } = await repo.create(ws.id, { url: `http://localhost:${receiver.port}/hooks`, events: null, description: null });
    await send(sys, ws, `delivered@${SIM}`);
    const list = await waitFor(async () => {
      const r = await sys.request('GET', `/v1/webhook-endpoints/${endpoint._id}/deliveries`, { key: ws.keys.admin });
      return r.body.items?.length ? r.body.items : null;
    });
    expect(list[0]).toMatchObject({ outcome: 'refused', statusCode: null, error: expect.stringContaining('not allowed') });
    expect(receiver.received).toHaveLength(0);

    // The poster itself, at each target of the issue: no request leaves.
    const poster = createWebhookPoster({ allowPrivateTargets: false, requireHttps: false }, { timeoutMs: 2000 });
    try {
      for (const url of [
        `http://127.0.0.1:${receiver.port}/`,
        'http://10.0.0.1/',
        'http://169.254.169.254/',
        `http://localhost:${receiver.port}/`,
      ]) {
        const r = await poster.post(
          { url, secrets: [{ secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`, until: null }] },
          { id: 'msg_xxxxxxxxxxxxxxxxxxxxxxxxxx', body: '{}' },
        );
        expect({ url, refused: r.refused, statusCode: r.statusCode }).toEqual({ url, refused: true, statusCode: null });
      }
    } finally {
      poster.close();
    }
    expect(receiver.received).toHaveLength(0);
  });
});

describe('outbound webhooks: an endpoint failing for OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS is disabled', () => {
  it('when every message fails all its attempts through the stretch, then the endpoint is disabled with an activity entry', async () => {
    const sink = await startSmtpSink();
    const receiver = await startWebhookReceiver();
    receiver.respond = () => 500;
    const sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        OUTBOUND_WEBHOOK_BACKOFF_MS: '50',
        OUTBOUND_WEBHOOK_ATTEMPTS: '2',
        // 1.8 s
        OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS: '0.0005',
      },
    });
    try {
      const ws = await sys.createWorkspace('Failing');
      const ep = await createEndpoint(sys, ws, { url: receiver.url });
      // The first message fails both attempts inside the stretch: the endpoint stays enabled.
      await send(sys, ws, `delivered@${SIM}`);
      await waitFor(async () => receiver.received.length >= 2);
      await new Promise((r) => setTimeout(r, 300));
      expect((await sys.request('GET', `/v1/webhook-endpoints/${ep.id}`, { key: ws.keys.admin })).body).toMatchObject({
        enabled: true,
        failingSince: expect.any(String),
      });
      await new Promise((r) => setTimeout(r, 2000));
      await send(sys, ws, `delivered@${SIM}`);
      const disabled = await waitFor(async () => {
        const r = await sys.request('GET', `/v1/webhook-endpoints/${ep.id}`, { key: ws.keys.admin });
        return r.body.enabled === false ? r.body : null;
      });
      expect(disabled.disabledReason).toBe('failing');
      const activity = await sys.request('GET', '/v1/activity', { key: ws.keys.admin });
      expect(activity.body.items[0]).toMatchObject({ action: 'webhook_endpoint.disabled', details: { reason: 'failing' } });
    } finally {
      await sys.close();
      await sink.close();
      await receiver.close();
    }
  });
});

describe('outbound webhooks: a status change never lacks its message when the logs database is away', () => {
  it('when the logs DB is down while emails are sent, then each email.sent goes out once the staged outcomes are written', async () => {
    const logsDb = await startFerretdb();
    const sink = await startSmtpSink();
    const receiver = await startWebhookReceiver();
    const sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        LOGS_MONGODB_URI: logsDb.uri,
        MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500',
        OUTBOUND_WEBHOOK_BACKOFF_MS: '200',
      },
    });
    try {
      const ws = await sys.createWorkspace('Outage');
      const ep = await createEndpoint(sys, ws, { url: receiver.url, events: ['email.sent'] });
      await logsDb.kill();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await send(sys, ws, `delivered+${i}@${SIM}`));
      await waitFor(async () => ids.every((id) => sink.countFor(id) === 1), 20_000, 'five hand-offs');
      // The outcomes wait in the outbox; their messages wait with them.
      await waitFor(async () => (await createOutbox(sys.redis, sys.config.queuePrefix).size()) === 5, 20_000, 'five staged outcomes');
      await new Promise((r) => setTimeout(r, 1000));
      expect(receiver.received).toHaveLength(0);
      await logsDb.start();
      const got = await receiver.waitForDelivered(5, 30_000);
      expect(got.map((r) => verified(ep.secret, r).data.id).sort()).toEqual([...ids].sort());
    } finally {
      await sys.close();
      await sink.close();
      await receiver.close();
      await logsDb.stop();
    }
  }, 90_000);
});

describe('outbound webhooks: a status change never lacks its message when Redis restarts', () => {
  it('when Redis restarts while emails are sent and their events applied, then every change reaches the receiver', async () => {
    // A Redis of its own, with its append-only file, as production runs it.
    const redis = await startRedis({ persist: true, args: ['--appendfsync', 'always'] });
    const sink = await startSmtpSink();
    const receiver = await startWebhookReceiver();
    const sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        REDIS_URL: redis.url,
        RATE_LIMIT_SEND_PER_MINUTE: '0',
        WEBHOOK_SECRET: EVENTS_SECRET,
        EVENTS_BACKOFF_MS: '200',
        OUTBOUND_WEBHOOK_BACKOFF_MS: '200',
      },
      worker: false,
    });
    try {
      const ws = await sys.createWorkspace('Redis restart');
      const ep = await createEndpoint(sys, ws, { url: receiver.url, events: ['email.sent', 'email.delivered'] });
      const ids: string[] = [];
      for (let i = 0; i < 600; i++) ids.push(await send(sys, ws, `delivered+${i}@${SIM}`));
      await sys.startWorker();
      await waitFor(async () => sink.messages.length >= 200, 30_000, '200 hand-offs');
      await redis.restart();
      const sent = await waitFor(
        async () => {
          const docs = await Promise.all(ids.map((id) => entryOf(sys, id)));
          return docs.every((d) => d?.status === 'sent') ? docs : null;
        },
        120_000,
        'every entry sent',
      );
      // Delivery events for all of them, a second change each.
      for (let i = 0; i < ids.length; i += 100) {
        const batch = ids.slice(i, i + 100).map((id, k) => ({
          id: `ev-r-${i + k}`,
          type: 'delivered',
          timestamp: new Date(sent[i + k]!.sentAt.getTime() + 5000).toISOString(),
          emailId: id,
        }));
        expect((await postEvents(sys, batch)).status).toBe(200);
      }
      const expected = new Set(
        ids.flatMap((id) => [
          webhookMessageId(id, 'email.sent', 'outcome'),
          webhookMessageId(id, 'email.delivered', `mailroom.ev-r-${ids.indexOf(id)}`),
        ]),
      );
      await waitFor(
        async () => {
          const got = new Set(receiver.received.filter((r) => r.status === 200).map((r) => r.id));
          return [...expected].every((id) => got.has(id));
        },
        120_000,
        `${expected.size} messages`,
      );
      for (const r of receiver.received.slice(0, 50)) expect(verified(ep.secret, r).data.id).toEqual(expect.stringMatching(/^em_/));
      const distinct = new Set(receiver.received.map((r) => r.id));
      process.stdout.write(
        `[faults] Redis restart with webhooks: ${ids.length} emails, ${expected.size} messages expected, ${distinct.size} distinct received, ${receiver.received.length} requests\n`,
      );
      expect(distinct.size).toBe(expected.size);
    } finally {
      await sys.close();
      await sink.close();
      await receiver.close();
      await redis.stop();
    }
  }, 300_000);
});
