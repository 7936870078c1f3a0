import { Router, type Response } from 'express';
import { z } from 'zod';
import {
  CUSTOM_EMAIL_BANNER,
  decodeEmailLogCursor,
  EMAIL_ID_PATTERN,
  EmailLogFilterQuery,
  EmailLogListQuery,
  EmailLogStatsQuery,
  emailLogCsvHeader,
  emailLogCsvRow,
  emailLogStats,
  encodeEmailLogCursor,
  MessageContent,
  newId,
  createSecretBox,
  retentionCutoff,
  toEmailLogDetail,
  toEmailLogFilter,
  toEmailLogItem,
  type SendEmailJob,
} from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { HttpError, notFound, parseOr400 } from '../http-error';
import { createPreviewTokens, previewCsp, previewDocument } from '../preview';

const DAY_MS = 86_400_000;
/** The stats default to the last 30 days and cover at most about a year per request. */
const STATS_DEFAULT_DAYS = 30;
const STATS_MAX_DAYS = 370;

export const EmailLogIdParams = z.object({ id: z.string().regex(EMAIL_ID_PATTERN) });

/** `GET /v1/email-logs/:id/preview`: the link's token, and `images=1` once the reader asked for remote images. */
export const EmailPreviewQuery = z.object({
  token: z.string().min(1).max(400),
  images: z.enum(['0', '1']).default('0'),
});

/** What `GET /v1/email-logs/:id/content` answers: the content as submitted, attachments without their bytes. */
export interface EmailContentView {
  subject: string;
  from: string | null;
  to: string;
  cc: string[];
  bcc: string[];
  replyTo: string | null;
  html: string | null;
  text: string | null;
  headers: Array<{ name: string; value: string }>;
  attachments: Array<{ filename: string; contentType: string | null; size: number }>;
}

/** Writes a chunk, waiting for the socket to drain so a slow reader keeps our memory flat. */
async function write(res: Response, chunk: string): Promise<void> {
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The email log for admins: list (keyset pages), CSV export, daily stats, one entry with its
 * timeline, and resend. Every query is scoped to the key's workspace; another workspace's ids
 * answer 404, never 403, so ids cannot be probed.
 */
export function emailLogsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const admin = deps.requireKey('admin');

  /**
   * Shows the new entry at once as `queued` (attempt 0). The worker's first outcome replaces it,
   * and if the worker was faster this write loses: outcomes never go back to an older attempt.
   */
  const recordQueued = async (job: SendEmailJob, now: Date) => {
    const custom = job.kind === 'send' ? await deps.settings.getPublic(job.workspaceId) : null;
    const from = custom?.from ?? deps.config.managed.from;
    await deps.logs.recordOutcome({
      id: job.emailId,
      workspaceId: job.workspaceId,
      status: 'queued',
      recipient: job.content.to,
      type: job.type,
      from,
      subject: job.content.subject,
      sendMethod: job.kind === 'test' ? 'test' : custom ? 'custom' : 'managed',
      messageId: `<${job.emailId}@${/@([^>\s]+)>?\s*$/.exec(from)?.[1]?.toLowerCase() ?? 'mailroom.local'}>`,
      providerMessageId: null,
      error: null,
      errorCode: null,
      errorHint: null,
      attempts: 0,
      nextRetryAt: null,
      reference: job.reference ?? null,
      metadata: job.metadata ?? null,
      resendOf: job.resendOf ?? null,
      createdAt: job.createdAt,
      sentAt: now.toISOString(),
      content: job.content,
    });
  };

  const findOwn = async (workspaceId: string, rawId: string) => {
    const parsed = EmailLogIdParams.safeParse({ id: rawId });
    const entry = parsed.success ? await deps.logs.findById(workspaceId, parsed.data.id) : null;
    if (!entry) throw notFound('Email log entry');
    return entry;
  };

  /** An entry and its stored content; past retention both are about to go, so both count as gone. */
  const findOwnContent = async (workspaceId: string, rawId: string) => {
    const entry = await findOwn(workspaceId, rawId);
    if (entry.sentAt < retentionCutoff(new Date(), deps.config.retentionMonths)) throw notFound('Email log entry');
    const stored = await deps.logs.getContent(workspaceId, entry._id);
    if (!stored) throw notFound('Stored content of this email');
    return { entry, stored };
  };
  const previews = createPreviewTokens(createSecretBox(deps.config.secretsKey).deriveKey('preview-v1'));

  router.get('/v1/email-logs', admin, async (req, res) => {
    const query = parseOr400(EmailLogListQuery, req.query, 'query');
    const after = query.cursor ? decodeEmailLogCursor(query.cursor) : undefined;
    if (after === null) {
      throw new HttpError(400, 'invalid_request', 'query.cursor: not a cursor from this API', [
        { path: 'query.cursor', message: 'not a cursor from this API' },
      ]);
    }
    const workspaceId = req.apiKey!.workspaceId;
    const [docs, settings] = await Promise.all([
      deps.logs.list(workspaceId, toEmailLogFilter(query), { limit: query.limit, ...(after ? { after } : {}) }),
      deps.settings.getPublic(workspaceId),
    ]);
    const last = docs.length === query.limit ? docs[docs.length - 1] : undefined;
    res.json({
      items: docs.map(toEmailLogItem),
      nextCursor: last ? encodeEmailLogCursor({ sentAt: last.sentAt, id: last._id }) : null,
      customEmailConnected: settings !== null,
      banner: settings !== null ? CUSTOM_EMAIL_BANNER : null,
    });
  });

  // Before `/:id`, which would otherwise take "export.csv" and "stats" as ids.
  router.get('/v1/email-logs/export.csv', admin, async (req, res) => {
    const filter = toEmailLogFilter(parseOr400(EmailLogFilterQuery, req.query, 'query'));
    const cursor = deps.logs.scan(req.apiKey!.workspaceId, filter);
    const stamp = new Date().toISOString().slice(0, 10);
    res.status(200).set({
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="email-log-${stamp}.csv"`,
      'Cache-Control': 'no-store',
    });
    let closed = false;
    res.once('close', () => {
      closed = true;
    });
    try {
      await write(res, emailLogCsvHeader());
      for await (const doc of cursor) {
        if (closed) break;
        await write(res, emailLogCsvRow(toEmailLogItem(doc)));
      }
      res.end();
    } catch (err) {
      // The header is gone already: all we can do is cut the body short so the client sees it.
      deps.log.error({ err }, 'email log export failed');
      res.destroy(err as Error);
    } finally {
      await cursor.return(undefined).catch(() => undefined);
    }
  });

  router.get('/v1/email-logs/stats', admin, async (req, res) => {
    const q = parseOr400(EmailLogStatsQuery, req.query, 'query');
    const today = new Date().toISOString().slice(0, 10);
    const until = q.until ?? today;
    const since = q.since ?? new Date(Date.parse(until) - (STATS_DEFAULT_DAYS - 1) * DAY_MS).toISOString().slice(0, 10);
    if ((Date.parse(until) - Date.parse(since)) / DAY_MS >= STATS_MAX_DAYS) {
      throw new HttpError(400, 'invalid_request', `query.since: at most ${STATS_MAX_DAYS} days per request`, [
        { path: 'query.since', message: `at most ${STATS_MAX_DAYS} days per request` },
      ]);
    }
    res.json(await emailLogStats(deps.logs, req.apiKey!.workspaceId, since, until));
  });

  router.get('/v1/email-logs/:id', admin, async (req, res) => {
    const entry = await findOwn(req.apiKey!.workspaceId, String(req.params.id));
    res.json(toEmailLogDetail(entry));
  });

  router.get('/v1/email-logs/:id/content', admin, async (req, res) => {
    const { entry, stored } = await findOwnContent(req.apiKey!.workspaceId, String(req.params.id));
    const view: EmailContentView = {
      subject: stored.subject,
      from: entry.from ?? null,
      to: stored.to,
      cc: stored.cc ?? [],
      bcc: stored.bcc ?? [],
      replyTo: stored.replyTo ?? null,
      html: stored.html ?? null,
      text: stored.text ?? null,
      headers: Object.entries(stored.headers ?? {}).map(([name, value]) => ({ name, value })),
      attachments: (stored.attachments ?? []).map((a) => ({
        filename: a.filename,
        contentType: a.contentType ?? null,
        size: Buffer.byteLength(a.content, 'base64'),
      })),
    };
    res.set('Cache-Control', 'no-store').json(view);
  });

  router.post('/v1/email-logs/:id/preview-link', admin, async (req, res) => {
    const workspaceId = req.apiKey!.workspaceId;
    const { entry } = await findOwnContent(workspaceId, String(req.params.id));
    const { token, expiresAt } = previews.issue(workspaceId, entry._id);
    const url = `/v1/email-logs/${encodeURIComponent(entry._id)}/preview?token=${encodeURIComponent(token)}`;
    res.status(201).set('Cache-Control', 'no-store').json({ url, expiresAt: expiresAt.toISOString() });
  });

  // No API key: an iframe cannot send one. The token from preview-link names the workspace.
  router.get('/v1/email-logs/:id/preview', async (req, res) => {
    const q = parseOr400(EmailPreviewQuery, req.query, 'query');
    const id = String(req.params.id);
    const granted = previews.verify(q.token, id);
    if (!granted) throw new HttpError(401, 'invalid_token', 'This preview link is not valid or has expired; open the preview again');
    const { stored } = await findOwnContent(granted.workspaceId, id);
    res
      .status(200)
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': previewCsp(q.images === '1'),
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cross-Origin-Resource-Policy': 'same-origin',
      })
      .send(previewDocument({ html: stored.html, text: stored.text }));
  });

  router.post('/v1/email-logs/:id/resend', admin, async (req, res) => {
    const workspaceId = req.apiKey!.workspaceId;
    const { entry, stored } = await findOwnContent(workspaceId, String(req.params.id));
    const now = new Date();
    const suppression = await deps.suppressions.find(workspaceId, entry.recipient);
    if (suppression) {
      const why = suppression.detail ? `${suppression.reason}: ${suppression.detail}` : suppression.reason;
      throw new HttpError(409, 'recipient_suppressed', `${entry.recipient} is suppressed (${why}); lift the suppression to send again`, [
        { path: 'recipient', message: suppression.reason },
      ]);
    }
    const { _id, workspaceId: _ws, sentAt: _sentAt, ...content } = stored;
    const resendId = newId('em');
    const job: SendEmailJob = {
      emailId: resendId,
      workspaceId,
      // The worker resolves the workspace's transport for every job, so fixed settings apply.
      kind: entry.sendMethod === 'test' ? 'test' : 'send',
      type: entry.type,
      createdAt: now.toISOString(),
      content: MessageContent.parse(content),
      ...(entry.reference ? { reference: entry.reference } : {}),
      ...(entry.metadata ? { metadata: entry.metadata } : {}),
      resendOf: entry._id,
    };
    try {
      await deps.sendQueue.add('send', job, { jobId: resendId });
    } catch (err) {
      deps.log.error({ err, emailId: resendId }, 'enqueue of a resend failed');
      throw new HttpError(503, 'queue_unavailable', 'The resend could not be queued; retry later', undefined, { 'Retry-After': '5' });
    }
    await deps.logs.recordResend(workspaceId, entry._id, resendId, now);
    await recordQueued(job, now).catch((err: unknown) => deps.log.warn({ err, emailId: resendId }, 'could not pre-record a resend'));
    await deps.activity.record({
      workspaceId,
      action: 'email.resent',
      actorKeyId: req.apiKey!.keyId,
      target: entry._id,
      details: { resendId, recipient: entry.recipient },
    });
    res.status(202).json({ id: resendId, resendOf: entry._id });
  });

  return router;
}
