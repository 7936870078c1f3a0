import type { Db, Filter, FindOptions } from 'mongodb';
import { entryBuckets, entryCollection, entryCollections, newId, NEW_ENTRY_FIELDS, type EmailLogDoc } from '@mailroom/shared';

/**
 * Log entries in the document shape of email-log.repository.ts, for writing straight into a logs
 * database with the repository's importEntries (fast enough for thousands of rows); the API
 * reads them back exactly as it reads what the worker wrote.
 */
export function logEntry(workspaceId: string, o: Partial<EmailLogDoc> & { sentAt?: Date } = {}): EmailLogDoc {
  const sentAt = o.sentAt ?? new Date();
  const id = o._id ?? newId('em', sentAt.getTime());
  return {
    _id: id,
    workspaceId,
    recipient: 'client@example.com',
    status: 'sent',
    type: 'invoice',
    from: 'Mailroom <notifications@mailroom.test>',
    subject: 'Invoice INV-1',
    error: null,
    errorCode: null,
    errorHint: null,
    sendMethod: 'managed',
    messageId: `<${id}@mailroom.test>`,
    providerMessageId: null,
    attempts: 1,
    nextRetryAt: null,
    reference: null,
    metadata: null,
    resendOf: null,
    createdAt: sentAt,
    updatedAt: sentAt,
    // resend and event fields as a new entry has them
    ...NEW_ENTRY_FIELDS,
    ...o,
    sentAt,
    ...entryBuckets(workspaceId, sentAt),
  };
}

/** Entries matching `filter` in every partition of a logs database (email-log-partitions.ts). */
export async function findEntries<T extends { _id: string } = { _id: string; [k: string]: any }>(
  db: Db,
  filter: Filter<T> = {},
  options: FindOptions = {},
): Promise<T[]> {
  const found = await Promise.all((await entryCollections<T>(db)).map((c) => c.find(filter, options).toArray()));
  return found.flat() as T[];
}

export async function countEntries<T extends { _id: string } = { _id: string; [k: string]: any }>(
  db: Db,
  filter: Filter<T> = {},
): Promise<number> {
  const counts = await Promise.all((await entryCollections<T>(db)).map((c) => c.countDocuments(filter)));
  return counts.reduce((a, b) => a + b, 0);
}

/** One entry by id, from its partition. */
export function findEntry<T extends { _id: string } = { _id: string; [k: string]: any }>(db: Db, id: string): Promise<T | null> {
  return entryCollection<T>(db, id).findOne({ _id: id } as Filter<T>) as Promise<T | null>;
}
