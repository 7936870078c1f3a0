import { MongoBulkWriteError, type Collection, type OptionalUnlessRequiredId } from 'mongodb';
import type { SendOutcome } from './email-log.repository';
import { entryBuckets } from './email-log-buckets';
import { isDuplicateKeyError } from './mongo';

/*
 * Write helpers of the email-log repository, shaped by FerretDB 1.x: every statement filters on
 * `_id` alone, and multi-statement commands stay small.
 */

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
    ...entryBuckets(o.workspaceId, o.sentAt),
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
  try {
    await col.insertMany(docs as OptionalUnlessRequiredId<T>[], { ordered: false });
  } catch (err) {
    if (!(err instanceof MongoBulkWriteError)) throw err;
    const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    for (const e of errors) {
      if (e.code !== 11000) throw err;
      duplicates.add(e.index);
    }
    // FerretDB stops an unordered insert at its first error: insert the rest one by one.
    const reported = Math.max(...errors.map((e) => e.index));
    if (err.result.insertedCount + errors.length < docs.length) {
      for (let i = reported + 1; i < docs.length; i++) {
        try {
          await col.insertOne(docs[i] as OptionalUnlessRequiredId<T>);
        } catch (e) {
          if (!isDuplicateKeyError(e)) throw e;
          duplicates.add(i);
        }
      }
    }
  }
  return duplicates;
}
