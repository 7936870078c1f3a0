import { Router } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import { HttpError, parseOr400 } from '../http-error';

export const ActivityListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(200).optional(),
});

/** Activity ids are time-sortable (`act_…`), so the last id of a page is the whole cursor. */
const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');
function decodeCursor(raw: string): string {
  const id = /^[A-Za-z0-9_-]+$/.test(raw) ? Buffer.from(raw, 'base64url').toString('utf8') : '';
  if (!/^act_[0-9A-Z]{26}$/.test(id)) {
    throw new HttpError(400, 'invalid_request', 'query.cursor: not a cursor from this API', [
      { path: 'query.cursor', message: 'not a cursor from this API' },
    ]);
  }
  return id;
}

/** `GET /v1/activity`: what admins and operators did in the key's own workspace, newest first. */
export function activityRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/v1/activity', deps.requireKey('admin'), async (req, res) => {
    const q = parseOr400(ActivityListQuery, req.query, 'query');
    const before = q.cursor ? decodeCursor(q.cursor) : undefined;
    const docs = await deps.activity.list(req.apiKey!.workspaceId, { limit: q.limit, ...(before ? { before } : {}) });
    const last = docs.length === q.limit ? docs[docs.length - 1] : undefined;
    res.json({
      items: docs.map((d) => ({
        id: d._id,
        action: d.action,
        actorKeyId: d.actorKeyId,
        target: d.target,
        details: d.details,
        at: d.at.toISOString(),
      })),
      nextCursor: last ? encodeCursor(last._id) : null,
    });
  });
  return router;
}
