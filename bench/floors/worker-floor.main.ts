/**
 * The worker floor as its own process: a BullMQ worker on the send queue whose processor does
 * one pooled nodemailer send of the job's message into the SMTP sink, with the worker's pool and
 * concurrency settings. Nothing else (no transport look-up, no suppression or tracking read, no
 * hand-off mark, no outcome written): what the send worker cannot go below with these libraries.
 *
 * Env: REDIS_URL, QUEUE_PREFIX, SMTP_PORT, SEND_CONCURRENCY (default 200). Prints `floor ready`.
 */
import { Worker } from 'bullmq';
import nodemailer from 'nodemailer';
import { createRedis, QUEUES } from '@mailroom/shared';

const transport = nodemailer.createTransport({
  host: '127.0.0.1',
  port: Number(process.env.SMTP_PORT),
  secure: false,
  ignoreTLS: true,
  pool: true,
  maxConnections: 5,
  maxMessages: 1000,
  logger: false,
});
const connection = createRedis(process.env.REDIS_URL!, 'worker');
const worker = new Worker(
  QUEUES.sendEmail,
  async (job) => {
    const { emailId, content } = job.data as { emailId: string; content: { to: string; subject: string; html?: string; text?: string } };
    await transport.sendMail({
      from: 'Mailroom <bench@mailroom.test>',
      to: content.to,
      subject: content.subject,
      ...(content.html !== undefined ? { html: content.html } : {}),
      ...(content.text !== undefined ? { text: content.text } : {}),
      messageId: `<${emailId}@mailroom.test>`,
      headers: { 'X-Mailroom-Id': emailId },
    });
  },
  { connection, prefix: process.env.QUEUE_PREFIX!, concurrency: Number(process.env.SEND_CONCURRENCY ?? 200) },
);
void worker.waitUntilReady().then(() => console.log('floor ready'));
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    transport.close();
    connection.disconnect();
  });
});
