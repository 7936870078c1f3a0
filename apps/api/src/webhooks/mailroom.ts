import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { BOUNCE_TYPES, DELIVERY_EVENT_TYPES, emailIdFrom, EMAIL_ID_PATTERN, type DeliveryEvent } from '@mailroom/shared';
import {
  badSignature,
  checkTimestamp,
  header,
  malformed,
  missingSignature,
  parseJsonBody,
  TIMESTAMP_TOLERANCE_SECONDS,
  type ReplayGuard,
  type WebhookAdapter,
} from './common';

/**
 * Our own documented format. `POST /v1/webhooks/mailroom` with
 * `Mailroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under WEBHOOK_SECRET>`
 * and a body of one event or an array of up to 1,000:
 * `{id, type, timestamp, emailId | messageId | providerMessageId, bounceType?, detail?, url?}`.
 */
export const MailroomWebhookEvent = z
  .object({
    id: z.string().min(1).max(200),
    type: z.enum(DELIVERY_EVENT_TYPES),
    timestamp: z.iso.datetime({ offset: true }),
    emailId: z.string().regex(EMAIL_ID_PATTERN).optional(),
    messageId: z.string().max(998).optional(),
    providerMessageId: z.string().min(1).max(300).optional(),
    bounceType: z.enum(BOUNCE_TYPES).optional(),
    detail: z.string().max(2000).optional(),
    url: z.url().max(4096).optional(),
  })
  .refine((e) => e.emailId || emailIdFrom(e.messageId) || e.providerMessageId, {
    message: 'emailId, messageId or providerMessageId is required',
  });
export const MailroomWebhookBody = z.union([MailroomWebhookEvent, z.array(MailroomWebhookEvent).min(1).max(1000)]);

/** Signs a body the way this adapter verifies it (for senders, tests and the benchmark). */
export function signMailroomWebhook(secret: string, body: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export function mailroomAdapter(secret: string, replay: ReplayGuard): WebhookAdapter {
  return {
    provider: 'mailroom',
    async handle({ headers, rawBody, now }) {
      const sig = header(headers, 'mailroom-signature');
      if (!sig) throw missingSignature('Mailroom-Signature');
      const parts = sig.split(',').map((p) => p.trim().split('='));
      const t = parts.find(([k]) => k === 't')?.[1];
      // Several v1 values are allowed so a sender can sign with an old and a new secret while rotating.
      const v1s = parts.filter(([k, v]) => k === 'v1' && v && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => v!);
      if (!t || !/^\d{1,12}$/.test(t) || v1s.length === 0) throw badSignature('Mailroom-Signature must be t=<unix>,v1=<hex>');
      checkTimestamp(Number(t), now, TIMESTAMP_TOLERANCE_SECONDS.mailroom);
      const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
      const match = v1s.find((v) => timingSafeEqual(Buffer.from(v, 'hex'), expected));
      if (!match) throw badSignature();
      if (!(await replay.claim(`mailroom:${match}`, TIMESTAMP_TOLERANCE_SECONDS.mailroom + 60))) {
        throw badSignature('This signed request was already received (replay)');
      }

      const parsed = MailroomWebhookBody.safeParse(parseJsonBody(rawBody));
      if (!parsed.success) throw malformed(parsed.error);
      const list = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
      const receivedAt = now.toISOString();
      return {
        events: list.map((e): DeliveryEvent => {
          const emailId = e.emailId ?? emailIdFrom(e.messageId);
          return {
            id: e.id,
            provider: 'mailroom',
            type: e.type,
            at: new Date(e.timestamp).toISOString(),
            receivedAt,
            ...(emailId ? { emailId } : {}),
            ...(e.providerMessageId ? { providerMessageId: e.providerMessageId } : {}),
            ...(e.type === 'bounced' ? { bounceType: e.bounceType ?? 'soft' } : {}),
            ...(e.detail !== undefined ? { detail: e.detail } : {}),
            ...(e.url !== undefined ? { url: e.url } : {}),
          };
        }),
      };
    },
  };
}
