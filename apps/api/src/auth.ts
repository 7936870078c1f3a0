import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { safeEqual, sha256Hex, type AuthenticatedKey, type KeyRole, type WorkspaceRepository } from '@mailroom/shared';
import { HttpError } from './http-error';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `requireKey` once the presented API key is known. */
      apiKey?: AuthenticatedKey;
    }
  }
}

const CACHE_MS = 30_000;
const CACHE_MAX = 10_000;

function bearer(req: Request): string | null {
  const h = req.header('authorization');
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1] ?? null;
}

const unauthorized = () => new HttpError(401, 'unauthorized', 'Missing or invalid API key', undefined, { 'WWW-Authenticate': 'Bearer' });

/**
 * API-key authentication. Keys are looked up by hash and cached for 30 s so the send path
 * does not read the main database on every request (a revoked key stops working within that).
 */
export function createKeyAuth(workspaces: WorkspaceRepository) {
  const cache = new Map<string, { key: AuthenticatedKey | null; until: number }>();

  const lookup = async (hash: string, plain: string) => {
    const key = await workspaces.authenticate(plain);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(hash, { key, until: Date.now() + CACHE_MS });
    return key;
  };

  /** Requires a key with one of `roles`; a valid key with another role gets 403. */
  return function requireKey(...roles: KeyRole[]): RequestHandler {
    const admit = (key: AuthenticatedKey | null, req: Request, next: NextFunction) => {
      if (!key) throw unauthorized();
      if (!roles.includes(key.role)) throw new HttpError(403, 'forbidden', `This route needs a key with role: ${roles.join(' or ')}`);
      req.apiKey = key;
      next();
    };
    // Not async: a cached key (nearly every request) is admitted in the same tick, without the
    // promise and microtask an async middleware costs on every request.
    return (req: Request, _res: Response, next: NextFunction) => {
      const plain = bearer(req);
      if (!plain || plain.length > 200) throw unauthorized();
      const hash = sha256Hex(plain);
      const hit = cache.get(hash);
      if (hit && hit.until > Date.now()) return admit(hit.key, req, next);
      return lookup(hash, plain).then((key) => admit(key, req, next));
    };
  };
}

/** Operator routes: `Authorization: Bearer $OPERATOR_TOKEN`. */
export function requireOperator(operatorToken: string): RequestHandler {
  return (req, _res, next) => {
    const token = bearer(req);
    if (!token || !safeEqual(token, operatorToken)) throw unauthorized();
    next();
  };
}
