import { entryBuckets, newId, NEW_ENTRY_FIELDS, type EmailLogDoc } from '@mailroom/shared';

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
