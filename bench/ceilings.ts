/**
 * The two ceilings of bench/throughput.bench.ts: the SMTP leg alone (pooled nodemailer into the
 * sink) and the log leg alone (raw inserts of log-sized documents into the logs database).
 */
import { MongoClient } from 'mongodb';
import nodemailer from 'nodemailer';
import { newId } from '@mailroom/shared';

export async function smtpCeiling(port: number, n: number, concurrency: number): Promise<number> {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 5,
    maxMessages: 1000,
  });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await t.sendMail({
          from: 'bench@mailroom.test',
          to: `delivered+${i}@simulator.mailroom.test`,
          subject: `Ceiling ${i}`,
          html: '<p>Hello</p>',
        });
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  t.close();
  return rate;
}

export async function logCeiling(mongoUri: string, n: number): Promise<number> {
  const client = await MongoClient.connect(mongoUri);
  const col = client.db('bench_ceiling').collection('email_logs');
  await col.createIndex({ workspaceId: 1, sentAt: -1, _id: -1 });
  const started = performance.now();
  const now = Date.now();
  for (let i = 0; i < n; i += 500) {
    const docs = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
      _id: newId('em') as never,
      workspaceId: 'ws_bench',
      recipient: `delivered+${i + j}@simulator.mailroom.test`,
      status: 'sent',
      type: 'invoice',
      from: 'Mailroom <bench@mailroom.test>',
      subject: `Ceiling ${i + j}`,
      error: null,
      errorCode: null,
      errorHint: null,
      sendMethod: 'managed',
      messageId: `<em_${i + j}@mailroom.test>`,
      providerMessageId: 'abcdef0123456789',
      attempts: 1,
      reference: { kind: 'invoice', id: `inv_${i + j}` },
      createdAt: new Date(now),
      sentAt: new Date(now),
      day: new Date(now).toISOString().slice(0, 10),
      opens: 0,
      clicks: 0,
    }));
    await col.insertMany(docs, { ordered: false });
  }
  const rate = n / ((performance.now() - started) / 1000);
  await client.db('bench_ceiling').dropDatabase();
  await client.close();
  return rate;
}
