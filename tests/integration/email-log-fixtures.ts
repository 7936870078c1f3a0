import { createEmailLogRepository, EMAIL_LOGS, type EmailContentDoc, type EmailLogDoc } from '@mailroom/shared';
import type { TestSystem } from '../support/system';

export { logEntry } from '../support/log-entry';

/** The collection of the log's entries. */
export const logsCollection = (sys: TestSystem) => sys.mongo.db(sys.config.logsMongo.db).collection<EmailLogDoc>(EMAIL_LOGS);

/** Writes entries (and content) into the logs database. */
export async function insertEntries(sys: TestSystem, docs: EmailLogDoc[], contents: EmailContentDoc[] = []): Promise<void> {
  await createEmailLogRepository(sys.mongo.db(sys.config.logsMongo.db)).importEntries(docs, contents);
}

/** Stored content for an entry, as a resend needs it. */
export const contentFor = (d: EmailLogDoc): EmailContentDoc => ({
  _id: d._id,
  workspaceId: d.workspaceId,
  sentAt: d.sentAt,
  to: d.recipient,
  subject: d.subject,
  text: 'x',
});

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
