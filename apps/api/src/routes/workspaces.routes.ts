import { Router } from 'express';
import { CreateWorkspaceRequest } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { requireOperator } from '../auth';
import { parseOr400 } from '../http-error';

/** Operator-only workspace creation; the two keys are shown once, here. */
export function workspacesRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.post('/v1/workspaces', requireOperator(deps.config.operatorToken), async (req, res) => {
    const body = parseOr400(CreateWorkspaceRequest, req.body);
    const { workspace, keys, keyIds } = await deps.workspaces.create(body.name);
    await deps.activity.record({
      workspaceId: workspace._id,
      action: 'workspace.created',
      actorKeyId: 'operator',
      target: workspace._id,
      details: { name: workspace.name, keyIds },
    });
    deps.log.info({ workspaceId: workspace._id }, 'workspace created');
    res.status(201).json({ id: workspace._id, name: workspace.name, createdAt: workspace.createdAt.toISOString(), keys });
  });
  return router;
}
