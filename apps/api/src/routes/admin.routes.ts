import { Router } from 'express';
import { z } from 'zod';
import { recordRetentionRun, runRetention } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { requireOperator } from '../auth';
import { parseOr400 } from '../http-error';

export const RetentionRunRequest = z.object({ now: z.iso.datetime({ offset: true }).optional() }).strict();

/** Operator maintenance: run the retention cleanup now (the scheduler runs it daily at 03:00 UTC). */
export function adminRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.post('/v1/admin/retention/run', requireOperator(deps.config.operatorToken), async (req, res) => {
    const body = parseOr400(RetentionRunRequest, req.body ?? {});
    const result = await runRetention({
      logs: deps.logs,
      activity: deps.activity,
      log: deps.log,
      now: body.now ? new Date(body.now) : new Date(),
      months: deps.config.retentionMonths,
    });
    await deps.outboundWebhooks.deliveries.removeBefore(new Date(result.cutoff));
    deps.metrics.retentionRemoved.inc(result.removed);
    await recordRetentionRun(deps.redis, deps.config.queuePrefix);
    res.json(result);
  });
  return router;
}
