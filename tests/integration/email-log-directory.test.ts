import { randomUUID } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';
import { createLogDirectory, newId, partitionOf, type LogMonthDoc } from '@mailroom/shared';
import { testServers } from '../support/system';

describe('the bucket directory keeps every partition name of a month', () => {
  let client: MongoClient;
  let db: Db;

  beforeAll(async () => {
    client = await MongoClient.connect(testServers().mongoUri);
    db = client.db(`t${randomUUID().replace(/-/g, '').slice(0, 12)}_logs`);
  });
  afterAll(async () => {
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
  });

  // At a month's end one worker process writes an email accepted last month while another writes
  // one accepted this month; on FerretDB 1.x the later `$addToSet` can drop the earlier name.
  it('when a concurrent writer dropped a partition name, then the process that added it puts it back', async () => {
    const dir = createLogDirectory(db);
    await dir.ensureIndexes();
    const months = db.collection<LogMonthDoc>('email_log_months');
    const sentAt = '2026-11-01T00:00:01.000Z';
    const accepted = { last: newId('em', Date.parse('2026-10-31T23:59:59Z')), now: newId('em', Date.parse('2026-11-01T00:00:00Z')) };
    await dir.register([
      { id: accepted.last, workspaceId: 'ws_edge', sentAt },
      { id: accepted.now, workspaceId: 'ws_edge', sentAt },
    ]);
    const both = [partitionOf(accepted.last), partitionOf(accepted.now)].sort();
    expect(both).toEqual(['202610', '202611']);
    expect((await months.findOne({ _id: 'ws_edge|2026-11' }))?.parts?.sort()).toEqual(both);

    // What the lost update leaves behind: only the other writer's name.
    await months.updateOne({ _id: 'ws_edge|2026-11' }, { $set: { parts: [partitionOf(accepted.now)] } });
    await dir.partsChecked();
    expect((await months.findOne({ _id: 'ws_edge|2026-11' }))?.parts?.sort()).toEqual(both);

    // Checked once per process: the same pair again schedules nothing.
    await dir.register([{ id: accepted.last, workspaceId: 'ws_edge', sentAt }]);
    const started = Date.now();
    await dir.partsChecked();
    expect(Date.now() - started).toBeLessThan(500);
    // The counts went on as usual: three entries on 1 November.
    expect((await months.findOne({ _id: 'ws_edge|2026-11' }))?.days).toEqual({ d01: 3 });
  });
});
