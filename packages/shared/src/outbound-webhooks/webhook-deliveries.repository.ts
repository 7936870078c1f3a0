import type { Collection, Db } from 'mongodb';
import { newId } from '../ids';
import type { WebhookMessage, WebhookMessageType } from './messages';

/** What became of one delivery attempt. */
export const DELIVERY_OUTCOMES = ['delivered', 'retrying', 'failed', 'gone', 'refused', 'skipped'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** One attempt to deliver one message to one endpoint (logs database, `webhook_deliveries`). */
export interface WebhookDeliveryDoc {
  _id: string; // wd_… (time-sortable)
  workspaceId: string;
  endpointId: string;
  messageId: string;
  type: WebhookMessageType;
  attempt: number;
  outcome: DeliveryOutcome;
  /** The receiver's HTTP status; null when there was no answer (refused, timeout, connection error). */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  nextRetryAt: Date | null;
  replay: boolean;
  at: Date;
}

/** A message's body as it was signed, kept for replays (logs database, `webhook_messages`). */
export interface WebhookMessageDoc {
  _id: string; // the webhook-id
  workspaceId: string;
  type: WebhookMessageType;
  body: string;
  createdAt: Date;
}

export interface WebhookDeliveryRepository {
  ensureIndexes(): Promise<void>;
  /** Keeps the message's body (first write wins: a message never changes). */
  saveMessage(message: WebhookMessage, at: Date): Promise<void>;
  getMessage(workspaceId: string, messageId: string): Promise<WebhookMessageDoc | null>;
  recordAttempt(attempt: Omit<WebhookDeliveryDoc, '_id'>): Promise<void>;
  /** An endpoint's attempts, newest first; `before` is the `_id` of the last item of the previous page. */
  list(workspaceId: string, endpointId: string, opts: { limit: number; before?: string }): Promise<WebhookDeliveryDoc[]>;
  /** Whether the endpoint was ever sent this message (replays only send what it was meant to get). */
  wasSentTo(workspaceId: string, endpointId: string, messageId: string): Promise<boolean>;
  /** Retention: attempts and messages older than `cutoff`. */
  removeBefore(cutoff: Date): Promise<number>;
}

export function createWebhookDeliveryRepository(logsDb: Db): WebhookDeliveryRepository {
  const attempts: Collection<WebhookDeliveryDoc> = logsDb.collection('webhook_deliveries');
  const messages: Collection<WebhookMessageDoc> = logsDb.collection('webhook_messages');
  return {
    async ensureIndexes() {
      // list(): an endpoint's attempts newest first (ids are time-sortable).
      await attempts.createIndex({ endpointId: 1, _id: -1 }, { name: 'endpoint_id' });
      // wasSentTo(): a message's attempts at one endpoint.
      await attempts.createIndex({ messageId: 1, endpointId: 1 }, { name: 'message_endpoint' });
      // removeBefore().
      await attempts.createIndex({ at: 1 }, { name: 'at' });
      await messages.createIndex({ createdAt: 1 }, { name: 'createdAt' });
    },
    async saveMessage(m, at) {
      await messages.updateOne(
        { _id: m.id },
        { $setOnInsert: { workspaceId: m.workspaceId, type: m.type, body: m.body, createdAt: at } },
        { upsert: true },
      );
    },
    getMessage: (workspaceId, messageId) => messages.findOne({ _id: messageId, workspaceId }),
    async recordAttempt(a) {
      await attempts.insertOne({ _id: newId('wd', a.at.getTime()), ...a });
    },
    list(workspaceId, endpointId, { limit, before }) {
      return attempts
        .find({ endpointId, workspaceId, ...(before ? { _id: { $lt: before } } : {}) })
        .sort({ _id: -1 })
        .limit(limit)
        .toArray();
    },
    async wasSentTo(workspaceId, endpointId, messageId) {
      return (await attempts.findOne({ messageId, endpointId, workspaceId }, { projection: { _id: 1 } })) !== null;
    },
    async removeBefore(cutoff) {
      const [a] = await Promise.all([attempts.deleteMany({ at: { $lt: cutoff } }), messages.deleteMany({ createdAt: { $lt: cutoff } })]);
      return a.deletedCount;
    },
  };
}
