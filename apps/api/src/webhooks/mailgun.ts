import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { emailIdFrom, type DeliveryEvent, type DeliveryEventType } from '@mailroom/shared';
import {
  badSignature,
  checkTimestamp,
  isoFromSeconds,
  malformed,
  missingSignature,
  parseJsonBody,
  TIMESTAMP_TOLERANCE_SECONDS,
  type ReplayGuard,
  type WebhookAdapter,
} from './common';

/** Mailgun event names to ours; `failed` splits on severity (permanent = hard bounce). Unlisted events are ignored. */
const MAILGUN_EVENTS: Readonly<Record<string, DeliveryEventType>> = {
  delivered: 'delivered',
  failed: 'bounced',
  opened: 'opened',
  clicked: 'clicked',
  complained: 'complained',
};

const Signature = z.object({
  timestamp: z.union([z.string().regex(/^\d{1,12}$/), z.number().int()]).transform(String),
  token: z.string().min(10).max(200),
  signature: z.string().regex(/^[0-9a-f]{64}$/),
});

const EventData = z.object({
  id: z.string().min(1).max(200),
  event: z.string().min(1).max(50),
  timestamp: z.number().positive(),
  severity: z.string().optional(),
  reason: z.string().optional(),
  url: z.string().max(4096).optional(),
  'delivery-status': z
    .object({ code: z.number().optional(), message: z.string().optional(), description: z.string().optional() })
    .partial()
    .optional(),
  message: z
    .object({ headers: z.object({ 'message-id': z.string().optional() }).partial().optional() })
    .partial()
    .optional(),
  'user-variables': z.record(z.string(), z.unknown()).optional(),
});

/** Mailgun's JSON webhooks: HMAC-SHA256 of timestamp + token under the signing key, token replay-guarded. */
export function mailgunAdapter(signingKey: string, replay: ReplayGuard): WebhookAdapter {
  return {
    provider: 'mailgun',
    async handle({ rawBody, now }) {
      const body = parseJsonBody(rawBody) as { signature?: unknown; 'event-data'?: unknown } | null;
      if (!body || typeof body !== 'object' || !body.signature) throw missingSignature('signature');
      const sig = Signature.safeParse(body.signature);
      if (!sig.success) throw badSignature('signature must have timestamp, token and a hex signature');
      checkTimestamp(Number(sig.data.timestamp), now, TIMESTAMP_TOLERANCE_SECONDS.mailgun);
      const expected = createHmac('sha256', signingKey)
        .update(sig.data.timestamp + sig.data.token)
        .digest();
      if (!timingSafeEqual(expected, Buffer.from(sig.data.signature, 'hex'))) throw badSignature();
      if (!(await replay.claim(`mailgun:${sig.data.token}`, TIMESTAMP_TOLERANCE_SECONDS.mailgun + 60))) {
        throw badSignature('This token was already used (replay)');
      }

      const parsed = EventData.safeParse(body['event-data']);
      if (!parsed.success) throw malformed(parsed.error);
      const e = parsed.data;
      const type = MAILGUN_EVENTS[e.event];
      if (!type) return { events: [] };
      const headerId = e.message?.headers?.['message-id'];
      const userVar = e['user-variables']?.['mailroom-id'];
      const emailId = emailIdFrom(typeof userVar === 'string' ? userVar : undefined) ?? emailIdFrom(headerId);
      const status = e['delivery-status'];
      const detail = [status?.code, status?.description || status?.message || e.reason]
        .filter((x) => x !== undefined && x !== '')
        .join(' ');
      const event: DeliveryEvent = {
        id: e.id,
        provider: 'mailgun',
        type,
        at: isoFromSeconds(e.timestamp),
        receivedAt: now.toISOString(),
        ...(emailId ? { emailId } : {}),
        ...(headerId ? { providerMessageId: headerId.replace(/^<|>$/g, '') } : {}),
        ...(type === 'bounced' ? { bounceType: e.severity === 'permanent' ? 'hard' : 'soft' } : {}),
        ...(detail ? { detail: detail.slice(0, 2000) } : {}),
        ...(type === 'clicked' && e.url ? { url: e.url } : {}),
      };
      return { events: [event] };
    },
  };
}
