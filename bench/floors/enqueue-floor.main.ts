/**
 * The HTTP enqueue floor as its own process: Express 5, `express.json()`, a zod parse of the
 * send body, one BullMQ `add`, `202`. Nothing else (no key, no rate limit, no idempotency, no
 * logging): what `POST /v1/emails` cannot go below with these libraries.
 *
 * Env: PORT, REDIS_URL, QUEUE_PREFIX. Prints `floor listening` when ready; SIGTERM stops it.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { z } from 'zod';
import { createRedis, createSendEmailQueue } from '@mailroom/shared';

/** The fields of the bench's send body, at their plainest. */
const Body = z.object({
  to: z.string(),
  type: z.string(),
  subject: z.string(),
  html: z.string().optional(),
  text: z.string().optional(),
  reference: z.object({ kind: z.string(), id: z.string() }).optional(),
});

const connection = createRedis(process.env.REDIS_URL!, 'client');
// The same queue options as the API's send queue (attempts, backoff, retention), so a job weighs the same.
const queue = createSendEmailQueue(connection, process.env.QUEUE_PREFIX!, 5, 30_000);
const app = express();
app.use(express.json());
app.post('/v1/emails', async (req, res) => {
  const content = Body.parse(req.body);
  const id = randomUUID();
  await queue.add('send', { emailId: id, content } as never, { jobId: id });
  res.status(202).json({ id, status: 'queued' });
});
const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('floor listening'));
process.once('SIGTERM', () => {
  server.close();
  void queue.close().then(() => connection.disconnect());
});
