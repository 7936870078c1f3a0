import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snsStringToSign } from '../../apps/api/src/webhooks/ses';
import { startTestSystem, type TestSystem } from '../support/system';

const EMAIL = 'em_01KBBBBBBBBBBBBBBBBBBBBBBB';
const MAILGUN_KEY = 'mailgun-signing-key-test';
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem';
const now = () => Math.floor(Date.now() / 1000);

/** A self-signed certificate made with openssl, as SNS's signing certificate stand-in. */
function makeCert(dir: string, name: string): { cert: string; key: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.pem`),
      '-days',
      '2',
      '-subj',
      '/CN=sns.amazonaws.com',
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(join(dir, `${name}.pem`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

describe('provider webhooks with real signatures', () => {
  let sys: TestSystem;
  let dir: string;
  let sns: { cert: string; key: string };
  let otherSns: { cert: string; key: string };
  let sgKey: KeyObject;
  let sgOtherKey: KeyObject;
  const fetched: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mr-sns-'));
    sns = makeCert(dir, 'a');
    otherSns = makeCert(dir, 'b');
    const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    sgKey = kp.privateKey;
    sgOtherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    sys = await startTestSystem({
      worker: false,
      env: {
        MANAGED_SMTP_URL: 'smtp://127.0.0.1:1',
        MAILGUN_SIGNING_KEY: MAILGUN_KEY,
        SENDGRID_VERIFICATION_KEY: kp.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
        POSTMARK_WEBHOOK_AUTH: 'pm-user:pm-pass',
        SES_TOPIC_ARNS: TOPIC,
      },
      snsHttp: {
        async get(url) {
          fetched.push(url);
          if (url === CERT_URL) return sns.cert;
          if (url.startsWith('https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription')) return '<ConfirmSubscriptionResponse/>';
          throw new Error(`unexpected fetch ${url}`);
        },
      },
    });
  });
  afterAll(async () => {
    await sys?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const queued = async (jobId: string) => (await sys.redis.exists(`${sys.config.queuePrefix}:delivery-events:${jobId}`)) === 1;
  const post = (provider: string, body: string, headers: Record<string, string> = {}) =>
    sys.request('POST', `/v1/webhooks/${provider}`, { body, headers: { 'content-type': 'application/json', ...headers } });

  describe('mailgun (HMAC of timestamp + token)', () => {
    const body = (id: string, o: { key?: string; ts?: number; token?: string; event?: string } = {}) => {
      const timestamp = String(o.ts ?? now());
      const token = o.token ?? `tok-${id}-${Math.random().toString(36).slice(2)}`;
      const signature = createHmac('sha256', o.key ?? MAILGUN_KEY)
        .update(timestamp + token)
        .digest('hex');
      return JSON.stringify({
        signature: { timestamp, token, signature },
        'event-data': {
          id,
          event: o.event ?? 'failed',
          severity: 'permanent',
          timestamp: now(),
          'delivery-status': { code: 550, description: '5.1.1 user unknown' },
          message: { headers: { 'message-id': `${EMAIL}@mailroom.test` } },
        },
      });
    };
    it('when valid, then 200 and a hard bounce for our id is queued', async () => {
      expect((await post('mailgun', body('mg-1'))).status).toBe(200);
      expect(await queued('mailgun.mg-1')).toBe(true);
    });
    it('when tampered, expired, signed with another key or replayed, then 401 and nothing is queued', async () => {
      expect((await post('mailgun', body('mg-2').replace('permanent', 'temporary'))).status).toBe(200); // the signature does not cover event-data…
      expect((await post('mailgun', body('mg-3').replace(/"signature":"[0-9a-f]{4}/, '"signature":"0000'))).status).toBe(401);
      expect((await post('mailgun', body('mg-4', { ts: now() - 3600 }))).status).toBe(401);
      expect((await post('mailgun', body('mg-5', { key: 'wrong-key-123' }))).status).toBe(401);
      const once = body('mg-6', { token: 'same-token-0123456789' });
      expect((await post('mailgun', once)).status).toBe(200);
      expect((await post('mailgun', once)).status).toBe(401);
      for (const id of ['mg-3', 'mg-4', 'mg-5']) expect(await queued(`mailgun.${id}`)).toBe(false);
    });
  });

  describe('sendgrid (ECDSA P-256 over timestamp + body)', () => {
    const events = (id: string) =>
      JSON.stringify([
        {
          email: 'a@b.test',
          timestamp: now(),
          event: 'bounce',
          type: 'bounce',
          sg_event_id: id,
          sg_message_id: 'abc123.filter0001',
          'smtp-id': `<${EMAIL}@mailroom.test>`,
          reason: '550 5.1.1',
        },
        { email: 'a@b.test', timestamp: now(), event: 'processed', sg_event_id: `${id}-p` },
      ]);
    const headers = (raw: string, o: { key?: KeyObject; ts?: number } = {}) => {
      const ts = String(o.ts ?? now());
      return {
        'x-twilio-email-event-webhook-timestamp': ts,
        'x-twilio-email-event-webhook-signature': sign('sha256', Buffer.from(ts + raw), o.key ?? sgKey).toString('base64'),
      };
    };
    it('when valid, then 200 and the mapped events (not the ignored ones) are queued', async () => {
      const raw = events('sg-1');
      expect((await post('sendgrid', raw, headers(raw))).body).toEqual({ received: 1 });
      expect(await queued('sendgrid.sg-1')).toBe(true);
    });
    it('when tampered, expired or signed with another key, then 401 and nothing is queued', async () => {
      const raw = events('sg-2');
      expect((await post('sendgrid', raw.replace('550', '551'), headers(raw))).status).toBe(401);
      expect((await post('sendgrid', raw, headers(raw, { ts: now() - 3600 }))).status).toBe(401);
      expect((await post('sendgrid', raw, headers(raw, { key: sgOtherKey }))).status).toBe(401);
      expect((await post('sendgrid', raw)).status).toBe(401);
      expect(await queued('sendgrid.sg-2')).toBe(false);
    });
  });

  describe('postmark (basic auth)', () => {
    // A 64-bit id as Postmark sends it (JSON.parse would round it).
    const raw = JSON.stringify({
      RecordType: 'Bounce',
      ID: 0,
      Type: 'HardBounce',
      MessageID: 'pm-msg-1',
      Description: 'The server was unable to deliver your message',
      Details: 'smtp;550 5.1.1',
      BouncedAt: new Date().toISOString(),
    }).replace('"ID":0', '"ID":4323372036854775807');
    const auth = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    it('when the credentials are right, then 200 and the bounce is queued; wrong or missing credentials are 401 (Postmark signs no timestamp, so there is no expiry)', async () => {
      expect((await post('postmark', raw, auth('pm-user', 'wrong'))).status).toBe(401);
      expect((await post('postmark', raw)).status).toBe(401);
      expect(await queued('postmark.Bounce-4323372036854775807')).toBe(false);
      expect((await post('postmark', raw, auth('pm-user', 'pm-pass'))).status).toBe(200);
      expect(await queued('postmark.Bounce-4323372036854775807')).toBe(true);
      expect((await post('postmark', '{"RecordType":', auth('pm-user', 'pm-pass'))).status).toBe(400);
    });
  });

  describe('ses (SNS signatures v1 and v2, certificate only from SNS hosts)', () => {
    const envelope = (o: {
      id: string;
      version?: '1' | '2';
      key?: string;
      ts?: string;
      certUrl?: string;
      type?: string;
      topic?: string;
    }) => {
      const m: Record<string, string> = {
        Type: o.type ?? 'Notification',
        MessageId: o.id,
        TopicArn: o.topic ?? TOPIC,
        Message: JSON.stringify({
          eventType: 'Bounce',
          mail: { messageId: 'ses-1', headers: [{ name: 'X-Mailroom-Id', value: EMAIL }] },
          bounce: { bounceType: 'Permanent', bouncedRecipients: [{ diagnosticCode: 'smtp; 550 5.1.1' }] },
        }),
        Timestamp: o.ts ?? new Date().toISOString(),
        SignatureVersion: o.version ?? '2',
        SigningCertURL: o.certUrl ?? CERT_URL,
      };
      if (m.Type === 'SubscriptionConfirmation') {
        m.Message = 'You have chosen to subscribe';
        m.Token = 'tok';
        m.SubscribeURL = 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok';
      }
      m.Signature = sign(
        m.SignatureVersion === '1' ? 'sha1' : 'sha256',
        Buffer.from(snsStringToSign(m as never)),
        o.key ?? sns.key,
      ).toString('base64');
      return m;
    };
    it('when signed with version 1 or 2, then 200 and the event is queued', async () => {
      expect(
        (await post('ses', JSON.stringify(envelope({ id: 'sns-1', version: '1' })), { 'content-type': 'text/plain; charset=UTF-8' }))
          .status,
      ).toBe(200);
      expect((await post('ses', JSON.stringify(envelope({ id: 'sns-2', version: '2' })))).status).toBe(200);
      expect(await queued('ses.sns-1')).toBe(true);
      expect(await queued('ses.sns-2')).toBe(true);
    });
    it('when tampered, expired, signed with another key or pointing at a foreign certificate host, then 401; a foreign topic is 403', async () => {
      const t = envelope({ id: 'sns-3' });
      expect((await post('ses', JSON.stringify({ ...t, Message: t.Message!.replace('Permanent', 'Transient') }))).status).toBe(401);
      expect(
        (await post('ses', JSON.stringify(envelope({ id: 'sns-4', ts: new Date(Date.now() - 2 * 3600_000).toISOString() })))).status,
      ).toBe(401);
      expect((await post('ses', JSON.stringify(envelope({ id: 'sns-5', key: otherSns.key })))).status).toBe(401);
      const before = fetched.length;
      expect((await post('ses', JSON.stringify(envelope({ id: 'sns-6', certUrl: 'https://evil.example.com/cert.pem' })))).status).toBe(401);
      expect(
        (await post('ses', JSON.stringify(envelope({ id: 'sns-7', certUrl: 'http://sns.us-east-1.amazonaws.com/x.pem' })))).status,
      ).toBe(401);
      expect(fetched.length).toBe(before);
      expect((await post('ses', JSON.stringify(envelope({ id: 'sns-8', topic: 'arn:aws:sns:us-east-1:1:other' })))).status).toBe(403);
      for (const id of ['sns-3', 'sns-4', 'sns-5', 'sns-6', 'sns-7', 'sns-8']) expect(await queued(`ses.${id}`)).toBe(false);
      // The certificate was fetched once and then served from the cache.
      expect(fetched.filter((u) => u === CERT_URL)).toHaveLength(1);
    });
    it('when SNS asks to confirm a subscription, then the SubscribeURL on the SNS host is fetched', async () => {
      const r = await post('ses', JSON.stringify(envelope({ id: 'sns-sub', type: 'SubscriptionConfirmation' })));
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ confirmed: true, topicArn: TOPIC });
      expect(fetched.some((u) => u.includes('Action=ConfirmSubscription'))).toBe(true);
    });
  });
});
