import { verify, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { emailIdFrom, type DeliveryEvent, type DeliveryEventType } from '@mailroom/shared';
import {
  badSignature,
  checkTimestamp,
  malformed,
  missingSignature,
  parseJsonBody,
  TIMESTAMP_TOLERANCE_SECONDS,
  WebhookError,
  type WebhookAdapter,
} from './common';

/** HTTP GETs to SNS (signing certificates, subscription confirmation). Injected so tests use local certificates. */
export interface SnsHttp {
  get(url: string): Promise<string>;
}

export const defaultSnsHttp: SnsHttp = {
  async get(url) {
    const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    return res.text();
  },
};

/** Only SNS's own hosts are ever fetched: anything else in a message could point us anywhere. */
const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;
export function isSnsUrl(value: string, pathEnd?: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'https:' && SNS_HOST.test(u.hostname) && !u.port && !u.username && (!pathEnd || u.pathname.endsWith(pathEnd));
  } catch {
    return false;
  }
}

const Envelope = z.object({
  Type: z.enum(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']),
  MessageId: z.string().min(1).max(200),
  TopicArn: z.string().min(1).max(400),
  Subject: z.string().optional(),
  Message: z.string(),
  Timestamp: z.iso.datetime({ offset: true }),
  SignatureVersion: z.enum(['1', '2']),
  Signature: z.string().min(1),
  SigningCertURL: z.string(),
  SubscribeURL: z.string().optional(),
  Token: z.string().optional(),
});
type Envelope = z.infer<typeof Envelope>;

/** The fields SNS signs, in its documented order, per message type. */
const SIGNED_FIELDS: Readonly<Record<Envelope['Type'], Array<keyof Envelope>>> = {
  Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'],
  SubscriptionConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
  UnsubscribeConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
};

export function snsStringToSign(m: Envelope): string {
  return SIGNED_FIELDS[m.Type].flatMap((k) => (m[k] === undefined ? [] : [`${k}\n${m[k]}\n`])).join('');
}

/** SES event (or notification) types to ours; `Send` and unknown ones are ignored. */
const SES_EVENTS: Readonly<Record<string, DeliveryEventType>> = {
  Delivery: 'delivered',
  DeliveryDelay: 'delivery_delayed',
  Bounce: 'bounced',
  Complaint: 'complained',
  Open: 'opened',
  Click: 'clicked',
  Reject: 'failed',
  'Rendering Failure': 'failed',
};

const SesMessage = z
  .object({
    eventType: z.string().optional(),
    notificationType: z.string().optional(),
    mail: z.object({
      messageId: z.string().min(1),
      timestamp: z.string().optional(),
      headers: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
      commonHeaders: z.object({ messageId: z.string().optional() }).loose().optional(),
    }),
    bounce: z
      .object({
        bounceType: z.string(),
        timestamp: z.string().optional(),
        bouncedRecipients: z.array(z.object({ diagnosticCode: z.string().optional() }).loose()).optional(),
      })
      .loose()
      .optional(),
    complaint: z.object({ timestamp: z.string().optional(), complaintFeedbackType: z.string().optional() }).loose().optional(),
    delivery: z.object({ timestamp: z.string().optional(), smtpResponse: z.string().optional() }).loose().optional(),
    open: z.object({ timestamp: z.string().optional() }).loose().optional(),
    click: z.object({ timestamp: z.string().optional(), link: z.string().optional() }).loose().optional(),
    deliveryDelay: z.object({ timestamp: z.string().optional(), delayType: z.string().optional() }).loose().optional(),
    reject: z.object({ reason: z.string().optional() }).loose().optional(),
  })
  .loose();

const CERT_CACHE_MAX = 50;

/** SES notifications through SNS: signature (v1 SHA1withRSA, v2 SHA256withRSA) against the SNS certificate; topics allow-listed. */
export function sesAdapter(topicArns: readonly string[], http: SnsHttp = defaultSnsHttp): WebhookAdapter {
  const certs = new Map<string, KeyObject>();
  const certificate = async (url: string) => {
    const hit = certs.get(url);
    if (hit) return hit;
    const key = new X509Certificate(await http.get(url)).publicKey;
    if (certs.size >= CERT_CACHE_MAX) certs.delete(certs.keys().next().value!);
    certs.set(url, key);
    return key;
  };
  return {
    provider: 'ses',
    async handle({ rawBody, now }) {
      const raw = parseJsonBody(rawBody) as Record<string, unknown> | null;
      if (!raw || typeof raw !== 'object' || !raw.Signature || !raw.SigningCertURL) throw missingSignature('Signature/SigningCertURL');
      const env = Envelope.safeParse(raw);
      if (!env.success) throw malformed(env.error);
      const m = env.data;
      if (!isSnsUrl(m.SigningCertURL, '.pem')) throw badSignature('SigningCertURL is not an SNS certificate URL');
      checkTimestamp(Date.parse(m.Timestamp) / 1000, now, TIMESTAMP_TOLERANCE_SECONDS.ses);
      let key: KeyObject;
      try {
        key = await certificate(m.SigningCertURL);
      } catch {
        throw badSignature('The signing certificate could not be fetched');
      }
      const algorithm = m.SignatureVersion === '1' ? 'sha1' : 'sha256';
      if (!verify(algorithm, Buffer.from(snsStringToSign(m)), key, Buffer.from(m.Signature, 'base64'))) throw badSignature();
      if (!topicArns.includes(m.TopicArn)) throw new WebhookError(403, 'unknown_topic', 'This SNS topic is not in SES_TOPIC_ARNS');

      if (m.Type === 'SubscriptionConfirmation') {
        if (!m.SubscribeURL || !isSnsUrl(m.SubscribeURL)) throw new WebhookError(400, 'invalid_payload', 'SubscribeURL is not an SNS URL');
        await http.get(m.SubscribeURL);
        return { events: [], reply: { status: 200, body: { confirmed: true, topicArn: m.TopicArn } } };
      }
      if (m.Type === 'UnsubscribeConfirmation') return { events: [] };

      let inner: unknown;
      try {
        inner = JSON.parse(m.Message);
      } catch {
        throw new WebhookError(400, 'invalid_payload', 'Message is not JSON');
      }
      const parsed = SesMessage.safeParse(inner);
      if (!parsed.success) throw malformed(parsed.error);
      const s = parsed.data;
      const type = SES_EVENTS[s.eventType ?? s.notificationType ?? ''];
      if (!type) return { events: [] };
      const hdr = (name: string) => s.mail.headers?.find((h) => h.name.toLowerCase() === name)?.value;
      const emailId = emailIdFrom(hdr('x-mailroom-id')) ?? emailIdFrom(hdr('message-id')) ?? emailIdFrom(s.mail.commonHeaders?.messageId);
      const part = s.bounce ?? s.complaint ?? s.delivery ?? s.open ?? s.click ?? s.deliveryDelay;
      const at = part?.timestamp && !Number.isNaN(Date.parse(part.timestamp)) ? new Date(part.timestamp).toISOString() : m.Timestamp;
      const detail =
        s.bounce?.bouncedRecipients?.[0]?.diagnosticCode ??
        s.reject?.reason ??
        s.deliveryDelay?.delayType ??
        s.complaint?.complaintFeedbackType;
      const event: DeliveryEvent = {
        id: m.MessageId,
        provider: 'ses',
        type,
        at,
        receivedAt: now.toISOString(),
        providerMessageId: s.mail.messageId,
        ...(emailId ? { emailId } : {}),
        ...(type === 'bounced' ? { bounceType: s.bounce?.bounceType === 'Permanent' ? 'hard' : 'soft' } : {}),
        ...(detail ? { detail: detail.slice(0, 2000) } : {}),
        ...(type === 'clicked' && s.click?.link ? { url: s.click.link } : {}),
      };
      return { events: [event] };
    },
  };
}
