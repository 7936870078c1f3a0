import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import {
  ERROR_HINTS,
  normalizeSendError,
  QUEUES,
  SendEmailJob,
  type Config,
  type EmailLogRepository,
  type Logger,
  type Outbox,
  type SendOutcome,
  type SuppressionRepository,
  type TrackingSettingsRepository,
  type TrackingTokens,
} from '@mailroom/shared';
import { applyTracking } from './tracking';
import { messageIdDomain, providerMessageIdFrom } from './transports/smtp-reply';
import { BEFORE_FINAL_DOT, type BeforeFinalDot } from './transports/final-dot-gate';
import type { ResolvedTransport, TransportRegistry } from './transports/transport-registry';

export interface SendResult {
  status: 'sent' | 'already-sent';
  providerMessageId: string | null;
}

/** How long the send path keeps retrying a Redis write that must not be lost (see untilRedisAnswers). */
const REDIS_RETRY_MS = 20_000;

/** BullMQ's exponential backoff, to tell the log when the next attempt is due. */
function nextRetryAt(job: Job, attempt: number): Date | null {
  const backoff = job.opts.backoff;
  const delay = typeof backoff === 'number' ? backoff : (backoff?.delay ?? 0);
  return new Date(Date.now() + Math.round(2 ** (attempt - 1) * delay));
}

export interface SendEmailWorkerDeps {
  config: Config;
  connection: ConnectionOptions;
  transports: TransportRegistry;
  logs: EmailLogRepository;
  outbox: Outbox;
  log: Logger;
  /** Suppressed recipients are not handed off. */
  suppressions: SuppressionRepository;
  /** Open/click tracking: the workspace switch and the token signer. */
  tracking: { settings: TrackingSettingsRepository; tokens: TrackingTokens };
  /** Called when a write to the logs database failed (the outcome stays in the outbox). */
  onLogsWriteFailed?: (err: unknown) => void;
}

/**
 * The processor: resolves the workspace's transport, sends, and records one log entry per
 * email through the outbox. Transient failures are rethrown for BullMQ to retry with backoff;
 * permanent ones fail the job at once.
 */
export function createSendEmailProcessor(deps: Omit<SendEmailWorkerDeps, 'connection'>) {
  const { transports, logs, outbox, log } = deps;

  const record = async (outcome: SendOutcome) => {
    const ok = await outbox.write(logs, outcome);
    if (!ok) deps.onLogsWriteFailed?.(new Error(`logs database write failed for ${outcome.id}`));
  };

  return async function processSendEmail(job: Job): Promise<SendResult> {
    const data = SendEmailJob.parse(job.data);
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;

    const c = data.content;
    const wantsTracking = deps.config.tracking.enabled && (c.html !== undefined || c.text !== undefined) && c.tracking !== false;
    // The look-ups of a send do not depend on one another: started together, their Redis reads
    // (earlier attempts, the cache versions of settings, suppressions and the tracking switch)
    // leave in one write and come back in one read. Their results are taken in the order the
    // checks below need them, each failure where it would have been thrown alone.
    const [earlierR, transportR, suppressedR, trackedR] = await Promise.allSettled([
      outbox.earlierAttempts(data.emailId),
      transports.resolve(data.workspaceId),
      deps.suppressions.find(data.workspaceId, c.to),
      wantsTracking ? deps.tracking.settings.isEnabled(data.workspaceId) : false,
    ]);
    const earlier = take(earlierR);

    let transport: ResolvedTransport;
    try {
      transport = take(transportR);
    } catch (err) {
      // The main database is unreachable: nothing was sent, so retrying is safe.
      log.warn({ err, emailId: data.emailId }, 'could not resolve transport');
      throw err;
    }
    const sendMethod = data.kind === 'test' ? 'test' : transport.kind;
    const messageId = `<${data.emailId}@${messageIdDomain(transport.from)}>`;
    const base = {
      id: data.emailId,
      workspaceId: data.workspaceId,
      recipient: c.to,
      type: data.type,
      from: transport.from,
      subject: c.subject,
      sendMethod,
      messageId,
      attempts: attempt,
      reference: data.reference ?? null,
      metadata: data.metadata ?? null,
      resendOf: data.resendOf ?? null,
      createdAt: data.createdAt,
      content: c,
    } as const;
    /** The server accepted it: recorded as sent, retried while Redis restarts, never taken for a send error. */
    const recordSent = (providerMessageId: string | null, sentAt: string) =>
      untilRedisAnswers(() =>
        record({ ...base, status: 'sent', providerMessageId, error: null, errorCode: null, errorHint: null, nextRetryAt: null, sentAt }),
      );
    // A previous attempt got as far as the SMTP server's acceptance: never send twice. Its entry
    // is written again (idempotent): its worker may have died before writing it.
    if (earlier.sent) {
      const { providerMessageId, sentAt } = earlier.sent;
      await recordSent(providerMessageId, sentAt ?? new Date().toISOString());
      return { status: 'already-sent', providerMessageId };
    }

    /** The final dot went out (or may have) and no answer was recorded: never sent again blindly. */
    const recordUnknown = (error: string) =>
      untilRedisAnswers(() =>
        record({
          ...base,
          status: 'send_failed',
          providerMessageId: null,
          error,
          errorCode: 'EHANDOFF_UNKNOWN',
          errorHint: ERROR_HINTS.EHANDOFF_UNKNOWN!,
          nextRetryAt: null,
          sentAt: new Date().toISOString(),
        }),
      );

    // An earlier attempt wrote its final dot and died before recording the server's answer: the
    // email may or may not have left. Say so instead of risking a second copy.
    if (earlier.unknown) {
      await recordUnknown(
        'The worker stopped after handing this email to the mail server and before its answer; whether it was accepted is unknown.',
      );
      throw new UnrecoverableError('EHANDOFF_UNKNOWN: an earlier hand-off did not finish');
    }

    // A hard bounce or complaint suppressed the address: sending again would hurt the sender's reputation.
    const suppressed = take(suppressedR);
    if (suppressed) {
      const reason =
        suppressed.reason === 'complaint' ? 'a spam complaint' : suppressed.reason === 'hard_bounce' ? 'a hard bounce' : 'an admin';
      await record({
        ...base,
        status: 'send_failed',
        providerMessageId: null,
        error: `Not sent: ${c.to} is on the suppression list since ${suppressed.createdAt.toISOString()} (${reason}${suppressed.emailId ? `, email ${suppressed.emailId}` : ''}${suppressed.detail ? `: ${suppressed.detail}` : ''})`,
        errorCode: 'ESUPPRESSED',
        errorHint: ERROR_HINTS.ESUPPRESSED!,
        nextRetryAt: null,
        sentAt: new Date().toISOString(),
      });
      throw new UnrecoverableError(`ESUPPRESSED: ${c.to} is suppressed`);
    }
    const tracked = take(trackedR);
    const { html, text } = tracked
      ? applyTracking({ html: c.html, text: c.text }, data.emailId, deps.tracking.tokens, deps.config.publicUrl)
      : { html: c.html, text: c.text };

    // The hand-off mark, set at the last responsible moment: envelope accepted, body written,
    // right before the final dot of DATA (transports/final-dot-gate.ts). No SMTP server delivers
    // a message whose final dot it has not received, so an attempt cut before the mark is
    // retried like any failed one; only a mark with no recorded answer is unknown.
    const token = randomUUID();
    const handOff: { state: 'before-dot' | 'marked' | 'taken' } = { state: 'before-dot' };
    const beforeFinalDot: BeforeFinalDot = async () => {
      // Redis restarting: the server waits for the rest of DATA meanwhile (its timeout is minutes).
      if (!(await untilRedisAnswers(() => outbox.markHandOff(data.emailId, token)))) {
        handOff.state = 'taken';
        throw new Error('another attempt of this email is handing it off');
      }
      handOff.state = 'marked';
    };

    let info: { response?: string };
    try {
      info = await transport.transporter.sendMail({
        from: transport.from,
        to: c.to,
        ...(c.cc ? { cc: c.cc } : {}),
        ...(c.bcc ? { bcc: c.bcc } : {}),
        ...(c.replyTo ? { replyTo: c.replyTo } : {}),
        subject: c.subject,
        ...(html !== undefined ? { html } : {}),
        ...(text !== undefined ? { text } : {}),
        messageId,
        headers: { ...c.headers, 'X-Mailroom-Id': data.emailId },
        attachments: (c.attachments ?? []).map((a) => ({
          filename: a.filename,
          content: a.content,
          encoding: 'base64',
          ...(a.contentType ? { contentType: a.contentType } : {}),
        })),
        [BEFORE_FINAL_DOT]: beforeFinalDot,
      } as Parameters<typeof transport.transporter.sendMail>[0]);
    } catch (err) {
      const n = normalizeSendError(err, sendMethod);
      if (handOff.state === 'taken') {
        await recordUnknown(
          'Another attempt was handing this email to the mail server at the same time; whether it was accepted is unknown.',
        );
        throw new UnrecoverableError('EHANDOFF_UNKNOWN: another attempt holds the hand-off');
      }
      if (handOff.state === 'marked' && !isServerReply(err)) {
        // The final dot went out and the connection ended (reset, timeout) before any answer:
        // the server may have accepted the email. The mark stays, so no retry sends it again.
        log.warn({ emailId: data.emailId, workspaceId: data.workspaceId, attempt, errorCode: n.errorCode }, 'hand-off unknown');
        await recordUnknown(
          `The connection to the mail server ended after the whole email was sent and before its answer (${n.message}); whether it was accepted is unknown.`,
        );
        throw new UnrecoverableError(`EHANDOFF_UNKNOWN: ${n.message}`);
      }
      // The server answered with an error, or the attempt ended before its final dot: nothing
      // was accepted. Redis may be restarting right now: these two are retried, or a retry of
      // this job would find this attempt's mark and report an email that never left as "unknown".
      const final = n.permanent || attempt >= maxAttempts;
      await untilRedisAnswers(() => outbox.releaseHandOff(data.emailId, token));
      await untilRedisAnswers(() =>
        record({
          ...base,
          status: final ? 'send_failed' : 'queued',
          providerMessageId: null,
          error: n.message,
          errorCode: n.errorCode,
          errorHint: n.errorHint,
          nextRetryAt: final ? null : nextRetryAt(job, attempt)!.toISOString(),
          sentAt: new Date().toISOString(),
        }),
      );
      log.info(
        { emailId: data.emailId, workspaceId: data.workspaceId, attempt, errorCode: n.errorCode, final },
        final ? 'send failed' : 'send attempt failed, will retry',
      );
      const message = `${n.errorCode}: ${n.message}`;
      if (n.permanent) throw new UnrecoverableError(message);
      throw new Error(message);
    }

    // The SMTP server accepted the email. Nothing after this point may treat it as unsent: a
    // failure to record it (Redis restarting) is retried, never taken for a send error.
    const providerMessageId = providerMessageIdFrom(info.response);
    await recordSent(providerMessageId, new Date().toISOString());
    return { status: 'sent', providerMessageId };
  };
}

/** The value of a look-up started with the others, or its error thrown. */
function take<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'fulfilled') return r.value;
  throw r.reason;
}

/** Whether a send error is the SMTP server's own reply (nodemailer then sets `responseCode`). */
function isServerReply(err: unknown): boolean {
  return typeof (err as { responseCode?: unknown } | null)?.responseCode === 'number';
}

/**
 * Runs `fn` until it resolves, for up to REDIS_RETRY_MS (a Redis restart or failover takes
 * seconds; the job's lock lasts at least 30 s), backing off from 50 ms to 1 s. Then rethrows.
 */
async function untilRedisAnswers<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + REDIS_RETRY_MS;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The BullMQ worker on the send-email queue. Nothing runs until `main.ts` calls this. */
export function createSendEmailWorker(deps: SendEmailWorkerDeps): Worker<unknown, SendResult> {
  return new Worker(QUEUES.sendEmail, createSendEmailProcessor(deps), {
    connection: deps.connection,
    prefix: deps.config.queuePrefix,
    // Stored on each job as `processedBy`, so a job tells which process (last) ran it.
    name: `${os.hostname()}:${process.pid}`,
    concurrency: deps.config.send.concurrency,
    // Sends take seconds at most; a lock well above the SMTP timeouts avoids false stalls.
    lockDuration: Math.max(30_000, deps.config.send.socketTimeoutMs + 10_000),
    maxStalledCount: 1,
  });
}
