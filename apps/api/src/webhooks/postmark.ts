import { createHash } from 'node:crypto';
import { z } from 'zod';
import { safeEqual, type DeliveryEvent, type DeliveryEventType } from '@mailroom/shared';
import { header, malformed, parseJsonBody, WebhookError, type WebhookAdapter } from './common';

/** Postmark record types to ours (SubscriptionChange and others are ignored). */
const POSTMARK_RECORDS: Readonly<Record<string, DeliveryEventType>> = {
  Delivery: 'delivered',
  Bounce: 'bounced',
  SpamComplaint: 'complained',
  Open: 'opened',
  Click: 'clicked',
};

/**
 * Postmark bounce `Type`s: the ones Postmark itself deactivates the address for are hard; a
 * spam notification is a complaint; auto-replies are not bounces at all. Others are soft.
 */
const POSTMARK_BOUNCE_TYPES: Readonly<Record<string, 'hard' | 'soft' | 'complaint' | 'ignore'>> = {
  HardBounce: 'hard',
  BadEmailAddress: 'hard',
  ManuallyDeactivated: 'hard',
  SpamComplaint: 'complaint',
  SpamNotification: 'complaint',
  AutoResponder: 'ignore',
  OpenRelayTest: 'ignore',
  SoftBounce: 'soft',
  Transient: 'soft',
  DnsError: 'soft',
  Blocked: 'soft',
};

const PostmarkRecord = z
  .object({
    RecordType: z.string().min(1).max(50),
    MessageID: z.string().min(1).max(300),
    ID: z.union([z.number(), z.string()]).optional(),
    Type: z.string().optional(),
    Description: z.string().optional(),
    Details: z.string().optional(),
    DeliveredAt: z.string().optional(),
    BouncedAt: z.string().optional(),
    ReceivedAt: z.string().optional(),
    OriginalLink: z.string().max(4096).optional(),
    Metadata: z.record(z.string(), z.string()).optional(),
  })
  .loose();

const when = (s: string | undefined, fallback: Date) => {
  const d = s ? new Date(s) : fallback;
  return Number.isNaN(d.getTime()) ? fallback.toISOString() : d.toISOString();
};

/**
 * Postmark signs nothing: its webhooks carry basic auth in the URL we give it
 * (`https://user:pass@host/v1/webhooks/postmark`), compared in constant time.
 */
export function postmarkAdapter(auth: { user: string; pass: string }): WebhookAdapter {
  const expected = `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString('base64')}`;
  return {
    provider: 'postmark',
    async handle({ headers, rawBody, now }) {
      const given = header(headers, 'authorization');
      if (!given) throw new WebhookError(401, 'missing_signature', 'Basic authentication is required');
      if (!safeEqual(given, expected)) throw new WebhookError(401, 'invalid_signature', 'Wrong webhook credentials');

      const parsed = PostmarkRecord.safeParse(parseJsonBody(rawBody));
      if (!parsed.success) throw malformed(parsed.error);
      const r = parsed.data;
      let type = POSTMARK_RECORDS[r.RecordType];
      if (!type) return { events: [] };
      const bounce = type === 'bounced' ? (POSTMARK_BOUNCE_TYPES[r.Type ?? ''] ?? 'soft') : null;
      if (bounce === 'ignore') return { events: [] };
      if (bounce === 'complaint') type = 'complained';
      const at = when(r.DeliveredAt ?? r.BouncedAt ?? r.ReceivedAt, now);
      // Postmark gives ids to bounces and complaints only; the rest are identified by what they are.
      // Postmark's ids are 64-bit integers that JSON.parse rounds: take the digits from the raw body.
      const rawId = r.ID !== undefined ? (/"ID"\s*:\s*"?(\d+)/.exec(rawBody.toString('utf8'))?.[1] ?? String(r.ID)) : undefined;
      const id =
        rawId !== undefined
          ? `${r.RecordType}-${rawId}`
          : `${r.RecordType}-${createHash('sha256')
              .update(`${r.MessageID}|${at}|${r.OriginalLink ?? ''}`)
              .digest('hex')
              .slice(0, 32)}`;
      const detail = [r.Description, r.Details].filter(Boolean).join(' — ');
      const event: DeliveryEvent = {
        id,
        provider: 'postmark',
        type,
        at,
        receivedAt: now.toISOString(),
        providerMessageId: r.MessageID,
        ...(bounce === 'hard' || bounce === 'soft' ? { bounceType: bounce } : {}),
        ...(detail ? { detail: detail.slice(0, 2000) } : {}),
        ...(type === 'clicked' && r.OriginalLink ? { url: r.OriginalLink } : {}),
      };
      return { events: [event] };
    },
  };
}
