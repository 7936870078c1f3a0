import { MongoBulkWriteError, type Collection, type OptionalUnlessRequiredId } from 'mongodb';
import type { SendOutcome } from '../repository';

/* Write helpers of the email-log repository: what a send outcome sets, and inserts that tolerate replays. */

/** Fields a send outcome sets on its entry. */
export function outcomeFields(o: SendOutcome) {
  return {
    workspaceId: o.workspaceId,
    status: o.status,
    recipient: o.recipient,
    type: o.type,
    from: o.from,
    subject: o.subject,
    sendMethod: o.sendMethod,
    messageId: o.messageId,
    providerMessageId: o.providerMessageId,
    error: o.error,
    errorCode: o.errorCode,
    errorHint: o.errorHint,
    attempts: o.attempts,
    nextRetryAt: o.nextRetryAt ? new Date(o.nextRetryAt) : null,
    reference: o.reference,
    metadata: o.metadata,
    resendOf: o.resendOf,
    createdAt: new Date(o.createdAt),
    sentAt: new Date(o.sentAt),
    updatedAt: new Date(),
  };
}

/** Fields a new entry starts with; delivery events and resends move them later. */
export const NEW_ENTRY_FIELDS = {
  resendCount: 0,
  lastResentAt: null,
  resends: [],
  deliveredAt: null,
  openedAt: null,
  opens: 0,
  clickedAt: null,
  clicks: 0,
  timeline: [],
  eventIds: [],
  eventsVersion: 0,
};

export const toError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));

/** Inserts unordered; returns the indexes that already existed (E11000). Other errors throw. */
export async function insertIgnoringDuplicates<T extends { _id: string }>(col: Collection<T>, docs: T[]): Promise<Set<number>> {
  const duplicates = new Set<number>();
  if (docs.length === 0) return duplicates;
  try {
    await col.insertMany(docs as OptionalUnlessRequiredId<T>[], { ordered: false });
  } catch (err) {
    if (!(err instanceof MongoBulkWriteError)) throw err;
    // Unordered: the server went on past each duplicate, so these are all that was not inserted.
    for (const e of Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]) {
      if (e.code !== 11000) throw err;
      duplicates.add(e.index);
    }
    // The driver reports a lost connection as a bulk error too, with no write errors in it.
    if (err.result.insertedCount + duplicates.size < docs.length) throw err;
  }
  return duplicates;
}
