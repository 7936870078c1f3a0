import { MongoClient, type Collection } from 'mongodb';
import {
  createEmailLogPages,
  createEmailLogRepository,
  detectListEngine,
  EMAIL_LOGS,
  type EmailLogDoc,
  type EmailLogFilter,
  type ListEngine,
} from '@mailroom/shared';
import { logEntry } from '../support/log-entry';
import { seededRandom } from '../../infra/dev/seeded-random';

/*
 * Both ways a page is read (repository's read/pages.ts): one sorted read, as MongoDB serves it,
 * and windows of time, as DocumentDB needs. Whatever the server under the test is, each way must
 * return exactly the entries of a plain in-memory sort, page after page.
 */
const DAY = 86_400_000;
const engines: Array<[string, ListEngine]> = [
  ['one sorted read', { sortsInIndex: async () => true }],
  ['windows of time', { sortsInIndex: async () => false }],
];

describe('email-log pages: list order, cursors and filters on both read strategies', () => {
  let client: MongoClient;
  let logs: Collection<EmailLogDoc>;
  const all: EmailLogDoc[] = [];
  const now = Date.now();

  beforeAll(async () => {
    client = await MongoClient.connect(process.env.TEST_MONGODB_URI!);
    const db = client.db(`pages_${process.pid}_${Date.now().toString(36)}`);
    const repo = createEmailLogRepository(db);
    await repo.ensureIndexes();
    logs = db.collection<EmailLogDoc>(EMAIL_LOGS);
    const random = seededRandom(7);
    // Bursts and quiet stretches over 200 days, equal times for tie-breaks by id, two workspaces.
    const times = [
      ...Array.from({ length: 300 }, () => now - Math.floor(random() * 3_600_000)),
      ...Array.from({ length: 200 }, () => now - 2 * DAY - Math.floor(random() * DAY)),
      ...Array.from({ length: 60 }, () => now - Math.floor(random() * 200 * DAY)),
      ...Array.from({ length: 20 }, () => now - 30 * DAY),
      now + 30_000, // a sender's clock slightly ahead
    ];
    const statuses = ['sent', 'delivered', 'bounced', 'opened'] as const;
    times.forEach((t, i) =>
      all.push(
        logEntry(i % 5 === 0 ? 'ws_other' : 'ws_pages', {
          _id: `em_${String(i).padStart(5, '0')}`,
          sentAt: new Date(t),
          status: statuses[i % statuses.length]!,
          recipient: `user${i % 7}@example.com`,
        }),
      ),
    );
    await repo.importEntries(all);
  });
  afterAll(async () => {
    await client?.db(logs.dbName).dropDatabase();
    await client?.close();
  });

  const expected = (match: (d: EmailLogDoc) => boolean) =>
    all
      .filter((d) => d.workspaceId === 'ws_pages' && match(d))
      .sort((a, b) => b.sentAt.getTime() - a.sentAt.getTime() || (a._id < b._id ? 1 : -1))
      .map((d) => d._id);

  const cases: Array<[string, EmailLogFilter, (d: EmailLogDoc) => boolean]> = [
    ['no filter', {}, () => true],
    ['status=bounced', { statuses: ['bounced'] }, (d) => d.status === 'bounced'],
    ['recipient prefix', { recipient: { prefix: 'user3@' } }, (d) => d.recipient.startsWith('user3@')],
    [
      'since/until',
      { since: new Date(now - 40 * DAY), until: new Date(now - DAY) },
      (d) => d.sentAt.getTime() >= now - 40 * DAY && d.sentAt.getTime() <= now - DAY,
    ],
  ];

  it('when the server is FerretDB, then pages are read in windows; on MongoDB in one sorted read', async () => {
    const info = await client.db('admin').command({ buildInfo: 1 });
    expect(await detectListEngine(client.db(logs.dbName)).sortsInIndex()).toBe(!info.ferretdb);
  });

  describe.each(engines)('when read as %s', (_name, engine) => {
    it.each(cases)('then walking pages of 37 with %s gives every match once, newest first', async (_c, filter, match) => {
      const pages = createEmailLogPages(logs, engine);
      const seen: string[] = [];
      let after: { sentAt: Date; id: string } | undefined;
      for (let i = 0; i < 100; i++) {
        const page = await pages.list('ws_pages', filter, { limit: 37, ...(after ? { after } : {}) });
        seen.push(...page.map((d) => d._id));
        if (page.length < 37) break;
        const last = page[page.length - 1]!;
        after = { sentAt: last.sentAt, id: last._id };
      }
      expect(seen).toEqual(expected(match));
    });

    it('then the export scan returns the same order', async () => {
      const pages = createEmailLogPages(logs, engine);
      const seen: string[] = [];
      for await (const d of pages.scan('ws_pages', {}, 50)) seen.push(d._id);
      expect(seen).toEqual(expected(() => true));
    });
  });
});
