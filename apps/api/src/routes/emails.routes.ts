import { Router } from 'express';
import { z } from 'zod';
import { attachmentsOverLimit, buildSendEmailJob, newId, SendEmailRequest } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { HttpError, parseOr400 } from '../http-error';

const IdempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'Idempotency-Key must be printable ASCII without spaces');

/** `POST /v1/emails`: validate, enqueue (job id = email id), answer 202. The worker sends. */
export function emailsRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.post('/v1/emails', deps.requireKey('send', 'admin'), async (req, res) => {
    const body = parseOr400(SendEmailRequest, req.body);
    const size = attachmentsOverLimit(body, deps.config.send.maxAttachmentsBytes);
    if (size !== null) {
      throw new HttpError(
        413,
        'attachments_too_large',
        `attachments: ${size} bytes exceed the limit of ${deps.config.send.maxAttachmentsBytes}`,
        [{ path: 'body.attachments', message: `at most ${deps.config.send.maxAttachmentsBytes} bytes in total` }],
      );
    }
    const workspaceId = req.apiKey!.workspaceId;
    const emailId = newId('em');
    const rawKey = req.header('idempotency-key');
    const idemKey = rawKey === undefined ? undefined : parseOr400(IdempotencyKey, rawKey, 'params');

    if (idemKey) {
      const r = await deps.idempotency.reserve(workspaceId, idemKey, req.body, emailId);
      if (r.kind === 'replay') {
        res.set('Idempotent-Replayed', 'true').status(202).json({ id: r.emailId, status: 'queued' });
        return;
      }
      if (r.kind === 'conflict') {
        throw new HttpError(409, 'idempotency_conflict', 'This Idempotency-Key was used with a different body in the last 24 hours');
      }
    }

    const job = buildSendEmailJob(body, workspaceId, emailId);
    try {
      await deps.sendQueue.add('send', job, { jobId: emailId });
    } catch (err) {
      if (idemKey) await deps.idempotency.release(workspaceId, idemKey, emailId).catch(() => undefined);
      deps.log.error({ err, emailId }, 'enqueue failed');
      throw new HttpError(503, 'queue_unavailable', 'The email could not be queued; retry later', undefined, { 'Retry-After': '5' });
    }
    deps.metrics.emailsAccepted.inc({ type: job.type });
    res.status(202).json({ id: emailId, status: 'queued' });
  });
  return router;
}
