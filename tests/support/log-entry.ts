import type { Db, Filter, FindOptions } from 'mongodb';
import { EMAIL_LOGS, newId, NEW_ENTRY_FIELDS, type EmailLogDoc } from '@mailroom/shared';

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
  };
}

/** Entries matching `filter` in a logs database. */
export function findEntries<T extends { _id: string } = { _id: string; [k: string]: any }>(
  db: Db,
  filter: Filter<T> = {},
  options: FindOptions = {},
): Promise<T[]> {
  return db.collection<T>(EMAIL_LOGS).find(filter, options).toArray() as Promise<T[]>;
}

export function countEntries<T extends { _id: string } = { _id: string; [k: string]: any }>(
  db: Db,
  filter: Filter<T> = {},
): Promise<number> {
  return db.collection<T>(EMAIL_LOGS).countDocuments(filter);
}

/** One entry by id. */
export function findEntry<T extends { _id: string } = { _id: string; [k: string]: any }>(db: Db, id: string): Promise<T | null> {
  return db.collection<T>(EMAIL_LOGS).findOne({ _id: id } as Filter<T>) as Promise<T | null>;
}
