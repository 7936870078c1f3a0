import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { emailIdFrom, type DeliveryEvent, type DeliveryEventType } from '@mailroom/shared';
import {
  badSignature,
  checkTimestamp,
  header,
  isoFromSeconds,
  malformed,
  missingSignature,
  parseJsonBody,
  TIMESTAMP_TOLERANCE_SECONDS,
  type ReplayGuard,
  type WebhookAdapter,
} from './common';

/** SendGrid event names to ours. `processed`, `unsubscribe`, `group_*` are ignored. */
const SENDGRID_EVENTS: Readonly<Record<string, DeliveryEventType>> = {
  delivered: 'delivered',
  deferred: 'delivery_delayed',
  bounce: 'bounced',
  dropped: 'failed',
  open: 'opened',
  click: 'clicked',
  spamreport: 'complained',
};

const SendgridEvent = z
  .object({
    event: z.string().min(1).max(50),
    timestamp: z.number().positive(),
    sg_event_id: z.string().min(1).max(200),
    sg_message_id: z.string().max(300).optional(),
    'smtp-id': z.string().max(998).optional(),
    mailroom_id: z.string().optional(),
    type: z.string().optional(),
    reason: z.string().optional(),
    status: z.string().optional(),
    response: z.string().optional(),
    url: z.string().max(4096).optional(),
    sg_machine_open: z.boolean().optional(),
  })
  .loose();
const SendgridBody = z.array(SendgridEvent).min(1).max(5000);

/** Accepts the key as SendGrid shows it (base64 DER) or as PEM. */
export function sendgridPublicKey(configured: string): KeyObject {
  const text = configured.trim();
  if (text.startsWith('-----BEGIN')) return createPublicKey(text);
  return createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
}

/**
 * SendGrid's signed event webhook: ECDSA (P-256, SHA-256) over `timestamp + raw body`, base64 DER
 * signature in X-Twilio-Email-Event-Webhook-Signature, timestamp in ...-Timestamp.
 */
export function sendgridAdapter(verificationKey: string, replay: ReplayGuard): WebhookAdapter {
  const key = sendgridPublicKey(verificationKey);
  return {
    provider: 'sendgrid',
    async handle({ headers, rawBody, now }) {
      const sig = header(headers, 'x-twilio-email-event-webhook-signature');
      const ts = header(headers, 'x-twilio-email-event-webhook-timestamp');
      if (!sig || !ts) throw missingSignature('X-Twilio-Email-Event-Webhook-Signature/-Timestamp');
      if (!/^\d{1,12}$/.test(ts)) throw badSignature('The timestamp must be unix seconds');
      checkTimestamp(Number(ts), now, TIMESTAMP_TOLERANCE_SECONDS.sendgrid);
      const ok = verify('sha256', Buffer.concat([Buffer.from(ts), rawBody]), key, Buffer.from(sig, 'base64'));
      if (!ok) throw badSignature();
      if (!(await replay.claim(`sendgrid:${sig}`, TIMESTAMP_TOLERANCE_SECONDS.sendgrid + 60))) {
        throw badSignature('This signed request was already received (replay)');
      }

      const parsed = SendgridBody.safeParse(parseJsonBody(rawBody));
      if (!parsed.success) throw malformed(parsed.error);
      const receivedAt = now.toISOString();
      const events = parsed.data.flatMap((e): DeliveryEvent[] => {
        const type = SENDGRID_EVENTS[e.event];
        if (!type) return [];
        const emailId = emailIdFrom(e.mailroom_id) ?? emailIdFrom(e['smtp-id']);
        // sg_message_id is "<X-Message-Id>.filter…": the first part is what SendGrid's SMTP reply gave.
        const providerMessageId = e.sg_message_id?.split('.')[0];
        const detail = [e.status, e.reason ?? e.response].filter(Boolean).join(' ');
        return [
          {
            id: e.sg_event_id,
            provider: 'sendgrid',
            type,
            at: isoFromSeconds(e.timestamp),
            receivedAt,
            ...(emailId ? { emailId } : {}),
            ...(providerMessageId ? { providerMessageId } : {}),
            // "blocked" is SendGrid's temporary/reputation rejection; "bounce" a permanent one.
            ...(type === 'bounced' ? { bounceType: e.type === 'blocked' ? 'soft' : 'hard' } : {}),
            ...(detail ? { detail: detail.slice(0, 2000) } : {}),
            ...(type === 'clicked' && e.url ? { url: e.url } : {}),
            // SendGrid flags Apple Mail Privacy Protection prefetches itself.
            ...(type === 'opened' && e.sg_machine_open ? { machine: true } : {}),
          },
        ];
      });
      return { events };
    },
  };
}
