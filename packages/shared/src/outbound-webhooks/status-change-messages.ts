import type { Db } from 'mongodb';
import { isMachine, type DeliveryEvent } from '../email-log/events/events';
import type { EmailEventsRepository } from '../email-log/events/events.repository';
import { EMAIL_LOGS, type EmailLogRepository } from '../email-log/repository';
import type { SendOutcome } from '../email-log/types';
import {
  eventMessage,
  MESSAGE_ENTRY_PROJECTION,
  outboundWebhookJobId,
  OUTCOME_MESSAGE_TYPES,
  outcomeMessage,
  type MessageEntryFields,
  type WebhookMessage,
} from './messages';
import type { OutboundWebhookQueue } from './outbound-webhook.queue';
import type { WebhookEndpointDirectory } from './webhook-endpoints.repository';

/**
 * Where a status change becomes its messages. The step that applies the change (the send
 * outcome's write, a batch of delivery events) enqueues them before it reports success, so:
 * - a send outcome stays staged in the outbox until its messages are on the queue too (a Redis
 *   or database failure leaves it for the flusher, which writes it and enqueues them again);
 * - a batch of events whose messages could not be enqueued fails, its jobs retry, and the retry
 *   (which finds the events already applied) enqueues them again.
 * Either way a status change never lacks its message; it may get it twice, under the same
 * `webhook-id` (job ids are derived from it, so BullMQ keeps one while the first job exists).
 */
export interface WebhookDispatcher {
  /** Whether the workspace has an enabled endpoint (one Redis GET while its endpoints are unchanged). */
  wants(workspaceId: string): Promise<boolean>;
  /** Enqueues each message for every enabled endpoint of its workspace that takes its type; returns the jobs added. */
  dispatch(messages: readonly WebhookMessage[]): Promise<number>;
}

type BulkJob = Parameters<OutboundWebhookQueue['addBulk']>[0][number];

export function createWebhookDispatcher(deps: { queue: OutboundWebhookQueue; directory: WebhookEndpointDirectory }): WebhookDispatcher {
  // The jobs of every dispatch made in one turn of the event loop go out in one addBulk (one
  // MULTI): the outcome batcher resolves its ~50 writes together, so their messages travel
  // together too. A failed addBulk fails every dispatch in it, and each caller retries its own.
  let pending: Array<{ jobs: BulkJob[]; done: (err?: unknown) => void }> = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    deps.queue.addBulk(batch.flatMap((b) => b.jobs)).then(
      () => batch.forEach((b) => b.done()),
      (err: unknown) => batch.forEach((b) => b.done(err)),
    );
  };
  const add = (jobs: BulkJob[]) =>
    new Promise<void>((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ jobs, done: (err) => (err === undefined ? resolve() : reject(err)) });
    });

  return {
    async wants(workspaceId) {
      return (await deps.directory.forWorkspace(workspaceId)).some((e) => e.enabled);
    },
    async dispatch(messages) {
      const byWorkspace = new Map<string, WebhookMessage[]>();
      for (const m of messages) byWorkspace.set(m.workspaceId, [...(byWorkspace.get(m.workspaceId) ?? []), m]);
      const jobs: BulkJob[] = [];
      for (const [workspaceId, list] of byWorkspace) {
        const endpoints = (await deps.directory.forWorkspace(workspaceId)).filter((e) => e.enabled);
        for (const m of list) {
          for (const e of endpoints) {
            if (e.events && !e.events.has(m.type)) continue;
            jobs.push({
              name: m.type,
              data: { messageId: m.id, endpointId: e.id, workspaceId, type: m.type, body: m.body },
              opts: { jobId: outboundWebhookJobId(m.id, e.id) },
            });
          }
        }
      }
      if (jobs.length) await add(jobs);
      return jobs.length;
    },
  };
}

/**
 * The log repository whose `recordOutcome` also enqueues the outcome's message (`email.sent`,
 * `email.send_failed`) once the entry is written, whatever the write found (a replay of an
 * outcome whose entry moved on still owes its message). `onRecorded` runs after both.
 */
export function withOutcomeMessages(
  logs: EmailLogRepository,
  dispatcher: WebhookDispatcher,
  onRecorded?: (o: SendOutcome) => void,
): EmailLogRepository {
  return {
    ...logs,
    async recordOutcome(o) {
      // The endpoint lookup runs beside the write, so a workspace without endpoints waits for
      // nothing more than before; the message is built only for one that has an endpoint.
      const [written, wanted] = await Promise.all([
        logs.recordOutcome(o),
        OUTCOME_MESSAGE_TYPES[o.status] ? dispatcher.wants(o.workspaceId) : false,
      ]);
      if (wanted) await dispatcher.dispatch([outcomeMessage(o)!]);
      onRecorded?.(o);
      return written;
    },
  };
}

/**
 * The events repository whose `applyBatch` also enqueues the messages of the events it applied
 * (and of those it found applied already: an earlier attempt may have died before enqueuing).
 * Machine opens and scanner clicks never make a message. Only workspaces with endpoints cost a
 * read: their entries' message fields, in one query per batch.
 */
export function withEventMessages(
  events: EmailEventsRepository,
  logsDb: Db,
  dispatcher: WebhookDispatcher,
  machineWindowMs: number,
): EmailEventsRepository {
  const entries = logsDb.collection<MessageEntryFields>(EMAIL_LOGS);
  return {
    ...events,
    async applyBatch(batch) {
      const out = await events.applyBatch(batch);
      const workspaces = new Set<string>();
      for (const r of out.results) if (r.kind !== 'missing') workspaces.add(r.workspaceId);
      const wanted = new Set<string>();
      await Promise.all([...workspaces].map(async (ws) => (await dispatcher.wants(ws)) && wanted.add(ws)));
      if (wanted.size === 0) return out;

      const todo: Array<{ emailId: string; event: DeliveryEvent }> = [];
      out.results.forEach((r, i) => {
        if (r.kind !== 'missing' && wanted.has(r.workspaceId)) todo.push({ emailId: r.emailId, event: batch[i]! });
      });
      const ids = [...new Set(todo.map((t) => t.emailId))];
      const docs = new Map(
        (await entries.find({ _id: { $in: ids } }, { projection: MESSAGE_ENTRY_PROJECTION }).toArray()).map((d) => [d._id, d]),
      );
      const messages = todo.flatMap(({ emailId, event }) => {
        const doc = docs.get(emailId);
        if (!doc || isMachine(event, { sentAt: doc.sentAt, machineWindowMs })) return [];
        return [eventMessage(doc, event)];
      });
      await dispatcher.dispatch(messages);
      return out;
    },
  };
}
