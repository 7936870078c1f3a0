import { createHash } from 'node:crypto';
import { z } from 'zod';
import { deliveryEventJobId, type DeliveryEvent, type DeliveryEventType } from '../email-log/events/events';
import type { EmailLogDoc, SendOutcome } from '../email-log/types';

/** The message types an endpoint can receive, one per kind of status change of an entry. */
export const WEBHOOK_MESSAGE_TYPES = [
  'email.sent',
  'email.send_failed',
  'email.delivery_delayed',
  'email.delivered',
  'email.opened',
  'email.clicked',
  'email.bounced',
  'email.complained',
  'email.failed',
] as const;
export type WebhookMessageType = (typeof WEBHOOK_MESSAGE_TYPES)[number];

/** The message type of each delivery event (data, not code). */
export const EVENT_MESSAGE_TYPES: Readonly<Record<DeliveryEventType, WebhookMessageType>> = {
  delivered: 'email.delivered',
  delivery_delayed: 'email.delivery_delayed',
  opened: 'email.opened',
  clicked: 'email.clicked',
  bounced: 'email.bounced',
  complained: 'email.complained',
  failed: 'email.failed',
};

/** The send outcomes that are status changes worth a message (`queued` between retries is not). */
export const OUTCOME_MESSAGE_TYPES: Readonly<Partial<Record<SendOutcome['status'], WebhookMessageType>>> = {
  sent: 'email.sent',
  send_failed: 'email.send_failed',
};

/** The entry fields a message carries (read by the event path for workspaces with endpoints). */
export type MessageEntryFields = Pick<
  EmailLogDoc,
  | '_id'
  | 'workspaceId'
  | 'status'
  | 'recipient'
  | 'type'
  | 'sendMethod'
  | 'from'
  | 'subject'
  | 'messageId'
  | 'providerMessageId'
  | 'reference'
  | 'metadata'
  | 'error'
  | 'errorCode'
  | 'errorHint'
  | 'attempts'
  | 'createdAt'
  | 'sentAt'
>;
export const MESSAGE_ENTRY_PROJECTION = Object.fromEntries(
  [
    'workspaceId',
    'status',
    'recipient',
    'type',
    'sendMethod',
    'from',
    'subject',
    'messageId',
    'providerMessageId',
    'reference',
    'metadata',
    'error',
    'errorCode',
    'errorHint',
    'attempts',
    'createdAt',
    'sentAt',
  ].map((f) => [f, 1]),
);

/** One message as it is signed and sent: `body` is the exact JSON string the signature covers. */
export interface WebhookMessage {
  /** `webhook-id`: derived from the entry, the change and the event, so a re-enqueue after a crash repeats it. */
  id: string;
  workspaceId: string;
  type: WebhookMessageType;
  body: string;
}

/** A stable `webhook-id` for one status change: `msg_` + 26 characters of a SHA-256. */
export function webhookMessageId(emailId: string, type: WebhookMessageType, eventKey: string): string {
  return `msg_${createHash('sha256').update(`${emailId}\n${type}\n${eventKey}`).digest('base64url').slice(0, 26)}`;
}

const iso = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).toISOString());

type EntryLike = Omit<MessageEntryFields, '_id' | 'createdAt' | 'sentAt'> & { id: string; createdAt: Date | string; sentAt: Date | string };

function entryData(e: EntryLike) {
  return {
    id: e.id,
    status: e.status,
    recipient: e.recipient,
    type: e.type,
    sendMethod: e.sendMethod,
    from: e.from,
    subject: e.subject,
    messageId: e.messageId,
    providerMessageId: e.providerMessageId,
    reference: e.reference,
    metadata: e.metadata,
    error: e.error,
    errorCode: e.errorCode,
    errorHint: e.errorHint,
    attempts: e.attempts,
    createdAt: iso(e.createdAt),
    sentAt: iso(e.sentAt),
  };
}

/** The `email.sent` / `email.send_failed` message of a send outcome; null for outcomes that are no status change. */
export function outcomeMessage(o: SendOutcome): WebhookMessage | null {
  const type = OUTCOME_MESSAGE_TYPES[o.status];
  if (!type) return null;
  const body = JSON.stringify({ type, timestamp: o.sentAt, data: { ...entryData(o), event: null } });
  return { id: webhookMessageId(o.id, type, 'outcome'), workspaceId: o.workspaceId, type, body };
}

/** The message of one applied delivery event, with the entry as it stands after it. */
export function eventMessage(entry: MessageEntryFields, e: DeliveryEvent): WebhookMessage {
  const type = EVENT_MESSAGE_TYPES[e.type];
  const event = {
    provider: e.provider,
    at: iso(e.at),
    ...(e.detail !== undefined ? { detail: e.detail } : {}),
    ...(e.url !== undefined ? { url: e.url } : {}),
    ...(e.bounceType !== undefined ? { bounceType: e.bounceType } : {}),
  };
  const body = JSON.stringify({ type, timestamp: iso(e.at), data: { ...entryData({ ...entry, id: entry._id }), event } });
  return { id: webhookMessageId(entry._id, type, deliveryEventJobId(e)), workspaceId: entry.workspaceId, type, body };
}

/** Data of a job on the outbound-webhooks queue: one message for one endpoint. */
export const OutboundWebhookJob = z.object({
  messageId: z.string().regex(/^msg_[A-Za-z0-9_-]{10,60}$/),
  endpointId: z.string().regex(/^we_[0-9A-Z]{26}$/),
  workspaceId: z.string().min(1).max(100),
  type: z.enum(WEBHOOK_MESSAGE_TYPES),
  body: z.string().min(2),
});
export type OutboundWebhookJob = z.infer<typeof OutboundWebhookJob>;

/** BullMQ refuses ':' in custom ids; message and endpoint ids have none. A replay adds a suffix. */
export function outboundWebhookJobId(messageId: string, endpointId: string, replay?: number): string {
  return `${messageId}.${endpointId}${replay === undefined ? '' : `.replay-${replay}`}`;
}
