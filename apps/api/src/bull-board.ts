import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { Router, type RequestHandler } from 'express';
import { safeEqual } from '@mailroom/shared';

export const BULL_BOARD_PATH = '/admin/queues';
const REALM = 'Basic realm="Mailroom operators", charset="UTF-8"';

/** The token from `Authorization: Basic` (any user name, the token as password) or `Bearer`. */
function presentedToken(header: string | undefined): string | null {
  if (!header) return null;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return null;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : null;
}

/**
 * Operators only. Answers 401 with a Basic challenge, so a browser shows its own login form,
 * and before the board's router so no queue name or job reaches an unauthenticated client.
 */
export function requireOperatorBasic(operatorToken: string): RequestHandler {
  return (req, res, next) => {
    const token = presentedToken(req.header('authorization'));
    if (token && safeEqual(token, operatorToken)) {
      next();
      return;
    }
    res
      .status(401)
      .set({ 'WWW-Authenticate': REALM, 'Cache-Control': 'no-store' })
      .json({
        error: { code: 'unauthorized', message: 'Operators only: sign in with any user name and the operator token as password' },
      });
  };
}

/** Bull Board over the given queues at {@link BULL_BOARD_PATH}, behind operator authentication. */
export function bullBoardRoutes(queues: readonly Queue[], operatorToken: string): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Mailroom queues' } },
  });
  const router = Router();
  router.use(BULL_BOARD_PATH, requireOperatorBasic(operatorToken), serverAdapter.getRouter() as RequestHandler);
  return router;
}
