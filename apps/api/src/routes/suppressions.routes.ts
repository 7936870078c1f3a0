import { Router } from 'express';
import { z } from 'zod';
import { EmailAddress } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { notFound, parseOr400 } from '../http-error';

export const SuppressionListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    after: z.string().max(400).optional(),
  })
  .strict();

/** The workspace's suppression list (admin): who is not sent to, and lifting a suppression. */
export function suppressionsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const admin = deps.requireKey('admin');

  router.get('/v1/suppressions', admin, async (req, res) => {
    const q = parseOr400(SuppressionListQuery, req.query, 'query');
    const workspaceId = req.apiKey!.workspaceId;
    // Cursors are the address of the last item; ids are `${workspaceId}:${address}`.
    const docs = await deps.suppressions.list(workspaceId, {
      limit: q.limit + 1,
      ...(q.after ? { after: `${workspaceId}:${q.after}` } : {}),
    });
    const page = docs.slice(0, q.limit);
    res.json({
      items: page.map((d) => ({ address: d.address, reason: d.reason, emailId: d.emailId, detail: d.detail, createdAt: d.createdAt })),
      next: docs.length > q.limit ? page[page.length - 1]!.address : null,
    });
  });

  router.delete('/v1/suppressions/:address', admin, async (req, res) => {
    const address = parseOr400(EmailAddress, req.params.address, 'params').toLowerCase();
    const workspaceId = req.apiKey!.workspaceId;
    const removed = await deps.suppressions.remove(workspaceId, address);
    if (!removed) throw notFound('Suppression');
    await deps.activity.record({
      workspaceId,
      action: 'suppression.removed',
      actorKeyId: req.apiKey!.keyId,
      target: address,
      details: null,
    });
    deps.log.info({ workspaceId, address, keyId: req.apiKey!.keyId }, 'suppression removed');
    res.status(204).end();
  });
  return router;
}
