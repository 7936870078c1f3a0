import { Router } from 'express';
import type { ApiDeps } from '../app';

async function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([p.catch(() => fallback), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `/healthz`: the process answers. `/readyz`: Redis and both databases answer too. */
export function healthRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const [redis, dbs] = await Promise.all([
      withTimeout(
        deps.redis.ping().then((r) => r === 'PONG'),
        2000,
        false,
      ),
      withTimeout(deps.dbs.ping(), 2000, { main: false, logs: false }),
    ]);
    const checks = { redis, mainDb: dbs.main, logsDb: dbs.logs };
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  return router;
}
