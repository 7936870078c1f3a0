import { Router } from 'express';
import type { ApiDeps } from '../app';
import { requireOperatorBasic } from '../bull-board';

/** `GET /metrics` for Prometheus, behind the operator token (Bearer, or basic auth as for Bull Board). */
export function metricsRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/metrics', requireOperatorBasic(deps.config.operatorToken), async (_req, res) => {
    const text = await deps.metrics.registry.metrics();
    res.set('Content-Type', deps.metrics.registry.contentType).set('Cache-Control', 'no-store').send(text);
  });
  return router;
}
