import { Webhook } from 'standardwebhooks';
import {
  ConfigError,
  eventMessage,
  forbiddenAddressReason,
  loadConfig,
  newId,
  outcomeMessage,
  signatureHeader,
  webhookMessageId,
  type MessageEntryFields,
  type SendOutcome,
} from '@mailroom/shared';
import { sendOutcome } from '../support/send-outcome';

const base = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  MONGODB_URI: 'mongodb://127.0.0.1:27017/acme',
  MANAGED_SMTP_URL: 'smtp://127.0.0.1:2525',
  MANAGED_FROM: 'Mailroom <no-reply@mailroom.test>',
};
const PROD = { ...base, NODE_ENV: 'production', OPERATOR_TOKEN: 'operator-token-0123456789', SECRETS_KEY: 'secrets-key-0123456789' };

describe('outbound webhooks configuration', () => {
  it('when nothing is set, then the issue defaults apply and private targets are allowed only outside production', () => {
    const dev = loadConfig(base).outboundWebhooks;
    expect(dev).toEqual({
      backoffMs: 10_000,
      attempts: 10,
      disableAfterMs: 24 * 3_600_000,
      concurrency: 50,
      timeoutMs: 10_000,
      allowPrivateTargets: true,
      requireHttps: false,
    });
    expect(loadConfig({ ...base, NODE_ENV: 'test' }).outboundWebhooks.allowPrivateTargets).toBe(true);
    expect(loadConfig(PROD).outboundWebhooks).toMatchObject({ allowPrivateTargets: false, requireHttps: true });
    expect(loadConfig({ ...PROD, WEBHOOK_TARGETS_ALLOW_PRIVATE: 'true' }).outboundWebhooks).toMatchObject({
      allowPrivateTargets: true,
      requireHttps: false,
    });
    expect(loadConfig({ ...base, WEBHOOK_TARGETS_ALLOW_PRIVATE: 'false' }).outboundWebhooks.allowPrivateTargets).toBe(false);
    expect(loadConfig({ ...base, OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS: '0.5' }).outboundWebhooks.disableAfterMs).toBe(1_800_000);
    expect(loadConfig(base).metrics).toEqual({ port: null, host: '127.0.0.1' });
  });

  it('when a value is wrong, then the error names the variable', () => {
    expect(() =>
      loadConfig({ ...base, OUTBOUND_WEBHOOK_ATTEMPTS: '0', METRICS_PORT: '70000', WEBHOOK_TARGETS_ALLOW_PRIVATE: 'maybe' }),
    ).toThrow(ConfigError);
    try {
      loadConfig({ ...base, OUTBOUND_WEBHOOK_ATTEMPTS: '0', METRICS_PORT: '70000', WEBHOOK_TARGETS_ALLOW_PRIVATE: 'maybe' });
    } catch (err) {
      for (const v of ['OUTBOUND_WEBHOOK_ATTEMPTS', 'METRICS_PORT', 'WEBHOOK_TARGETS_ALLOW_PRIVATE'])
        expect((err as Error).message).toContain(v);
    }
  });
});

describe('outbound webhook messages', () => {
  const id = newId('em');
  const outcome = (status: SendOutcome['status']): SendOutcome =>
    sendOutcome({
      id,
      workspaceId: 'ws_1',
      status,
      from: 'A <a@acme.test>',
      messageId: `<${id}@acme.test>`,
      createdAt: '2026-12-02T10:00:00.000Z',
      sentAt: '2026-12-02T10:00:01.000Z',
    });

  it('when the same change is made into a message twice, then id and body are identical; a retry between attempts makes none', () => {
    expect(outcomeMessage(outcome('queued'))).toBeNull();
    const a = outcomeMessage(outcome('sent'))!;
    expect(outcomeMessage(outcome('sent'))).toEqual(a);
    expect(a.id).toBe(webhookMessageId(id, 'email.sent', 'outcome'));
    expect(a.id).toMatch(/^msg_[A-Za-z0-9_-]{26}$/);
    expect(outcomeMessage(outcome('send_failed'))!.id).not.toBe(a.id);
    expect(JSON.parse(a.body)).toMatchObject({ type: 'email.sent', timestamp: '2026-12-02T10:00:01.000Z', data: { id, event: null } });
  });

  it('when two events of one entry are made into messages, then each has its own id, the event in data.event', () => {
    const entry = {
      ...outcome('sent'),
      _id: id,
      status: 'delivered',
      createdAt: new Date(),
      sentAt: new Date(),
    } as unknown as MessageEntryFields;
    const e = {
      id: 'p1',
      provider: 'mailgun',
      type: 'delivered',
      at: '2026-12-02T10:00:05.000Z',
      receivedAt: '2026-12-02T10:00:06.000Z',
    } as const;
    const m1 = eventMessage(entry, e);
    const m2 = eventMessage(entry, { ...e, id: 'p2' });
    expect(m1.id).not.toBe(m2.id);
    expect(eventMessage(entry, e).id).toBe(m1.id);
    expect(JSON.parse(m1.body)).toMatchObject({
      type: 'email.delivered',
      data: { status: 'delivered', event: { provider: 'mailgun', at: e.at } },
    });
  });

  it('when a message is signed with a current and a rotated-out secret, then standardwebhooks verifies it with either, and not after the overlap', () => {
    const s1 = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    const s2 = `whsec_${Buffer.alloc(32, 2).toString('base64')}`;
    const now = new Date();
    const header = signatureHeader(
      [
        { secret: s2, until: null },
        { secret: s1, until: now.getTime() + 1000 },
      ],
      'msg_x',
      now,
      '{"a":1}',
    );
    const headers = { 'webhook-id': 'msg_x', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': header };
    expect(new Webhook(s1).verify('{"a":1}', headers)).toEqual({ a: 1 });
    expect(new Webhook(s2).verify('{"a":1}', headers)).toEqual({ a: 1 });
    const later = signatureHeader(
      [
        { secret: s2, until: null },
        { secret: s1, until: now.getTime() - 1 },
      ],
      'msg_x',
      now,
      '{"a":1}',
    );
    expect(later.split(' ')).toHaveLength(1);
  });

  it('when an address is loopback, private, link-local, metadata or unspecified, then it is forbidden; a public one is not', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.0.5',
      '192.168.1.1',
      '169.254.169.254',
      '0.0.0.0',
      '::1',
      'fd00:ec2::254',
      'fe80::1',
      '::ffff:127.0.0.1',
      '100.64.0.1',
    ]) {
      expect({ a, reason: forbiddenAddressReason(a) }).toEqual({ a, reason: expect.any(String) });
    }
    for (const a of ['93.184.215.14', '2606:4700:4700::1111']) expect(forbiddenAddressReason(a)).toBeNull();
  });
});
