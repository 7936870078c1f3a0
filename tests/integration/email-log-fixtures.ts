import { newId, type EmailLogDoc } from '@mailroom/shared';
import type { TestSystem } from '../support/system';

/**
 * Log entries written straight into the test system's logs database, in the document shape
 * of email-log.repository.ts: fast enough for thousands of rows, and the API reads them back
 * exactly as it reads what the worker wrote.
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
    resendCount: 0,
    lastResentAt: null,
    resends: [],
    createdAt: sentAt,
    day: sentAt.toISOString().slice(0, 10),
    deliveredAt: null,
    openedAt: null,
    opens: 0,
    clickedAt: null,
    clicks: 0,
    updatedAt: sentAt,
    ...o,
    sentAt,
  };
}

export const logsCollection = (sys: TestSystem) => sys.mongo.db(sys.config.logsMongo.db).collection<EmailLogDoc>('email_logs');

export async function insertEntries(sys: TestSystem, docs: EmailLogDoc[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 5000) {
    await logsCollection(sys).insertMany(docs.slice(i, i + 5000), { ordered: false });
  }
}

/** Ids of every page of a list query, following nextCursor. */
export async function walkPages(sys: TestSystem, key: string, query: string, between?: () => Promise<void>): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const sep = query ? '&' : '';
    const r = await sys.request('GET', `/v1/email-logs?${query}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`, { key });
    if (r.status !== 200) throw new Error(`list failed: ${r.status} ${JSON.stringify(r.body)}`);
    ids.push(...r.body.items.map((i: { id: string }) => i.id));
    cursor = r.body.nextCursor;
    if (!cursor) return ids;
    await between?.();
  }
  throw new Error('too many pages');
}
