import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ownKey, type AuthenticatedKey, type Config, type KeyRole, type Logger, type RedisClient as Redis } from '@mailroom/shared';
import { HttpError } from './http-error';

const WINDOW_MS = 60_000;

/**
 * Fixed one-minute windows, counted atomically in Redis: the first hit of a window creates the
 * counter with its expiry, so every API process shares one count per key. Returns the count
 * and the milliseconds left in the window.
 */
const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
`;

export interface RateLimiter {
  /** Counts one request of `key`; sets RateLimit-* headers and throws a 429 past the limit. */
  hit(key: AuthenticatedKey, res: Response): Promise<void>;
}

/**
 * Per-key limits by role (`RATE_LIMIT_SEND_PER_MINUTE`, `RATE_LIMIT_ADMIN_PER_MINUTE`). Keys live
 * under the queue prefix, so in a Redis Cluster they share the queues' hash slot.
 */
export function createRateLimiter(redis: Redis, config: Pick<Config, 'queuePrefix' | 'rateLimit'>, log: Logger): RateLimiter {
  return {
    async hit(key, res) {
      const limit = config.rateLimit[key.role];
      if (!limit) return;
      const window = Math.floor(Date.now() / WINDOW_MS);
      let count: number;
      let ttlMs: number;
      try {
        const r = (await redis.eval(HIT_SCRIPT, 1, ownKey(config.queuePrefix, 'rate', key.keyId, String(window)), WINDOW_MS)) as [
          number,
          number,
        ];
        [count, ttlMs] = r;
      } catch (err) {
        // Limits protect us from floods; an unreachable Redis must not turn into refused requests here.
        log.warn({ err, keyId: key.keyId }, 'rate limiter unavailable; request let through');
        return;
      }
      const resetS = Math.max(1, Math.ceil(ttlMs / 1000));
      res.set({
        'RateLimit-Policy': `${limit};w=${WINDOW_MS / 1000}`,
        'RateLimit-Limit': String(limit),
        'RateLimit-Remaining': String(Math.max(0, limit - count)),
        'RateLimit-Reset': String(resetS),
      });
      if (count > limit) {
        throw new HttpError(429, 'rate_limited', `Too many requests for this key: at most ${limit} per minute`, undefined, {
          'Retry-After': String(resetS),
        });
      }
    },
  };
}

/**
 * Puts the limiter behind key authentication: every route guarded by `requireKey` is limited
 * per key, including routes added later, without touching them.
 */
export function withRateLimit(
  requireKey: (...roles: KeyRole[]) => RequestHandler,
  limiter: RateLimiter,
): (...roles: KeyRole[]) => RequestHandler {
  return (...roles) => {
    const auth = requireKey(...roles);
    // Express 5 passes a thrown error or a rejected promise of either step to the error handler.
    return (req: Request, res: Response, next: NextFunction) =>
      auth(req, res, (err?: unknown) => {
        if (err) return next(err);
        limiter.hit(req.apiKey!, res).then(() => next(), next);
      });
  };
}
