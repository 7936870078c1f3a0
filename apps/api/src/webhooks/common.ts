import type { IncomingHttpHeaders } from 'node:http';
import { ownKey, type DeliveryEvent, type WebhookProvider, type RedisClient as Redis } from '@mailroom/shared';

/** A webhook that must not be enqueued: 401 (not from the provider), 400 (unreadable), 403 (not ours). */
export class WebhookError extends Error {
  constructor(
    readonly status: 400 | 401 | 403,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface WebhookRequest {
  headers: IncomingHttpHeaders;
  /** The body exactly as received: signatures are computed over these bytes. */
  rawBody: Buffer;
  now: Date;
}

export interface WebhookResult {
  events: DeliveryEvent[];
  /** A provider handshake (SNS subscription) answers with this instead of the default. */
  reply?: { status: number; body: unknown };
}

/** One provider: verifies the request, then maps its payload to our events. */
export interface WebhookAdapter {
  provider: WebhookProvider;
  handle(req: WebhookRequest): Promise<WebhookResult>;
}

/**
 * How old a signed timestamp may be. Ours is 5 minutes; providers that keep the original
 * timestamp on retries (SNS signs the publish time) get longer so their retries still pass.
 */
export const TIMESTAMP_TOLERANCE_SECONDS: Readonly<Record<Exclude<WebhookProvider, 'postmark'>, number>> = {
  mailroom: 300,
  mailgun: 900,
  sendgrid: 900,
  ses: 3600,
};

/** Remembers signatures/tokens for the tolerance window, so a captured request cannot be replayed. */
export interface ReplayGuard {
  /** True the first time `key` is seen within `ttlSeconds`. */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
}

export function createReplayGuard(redis: Redis, prefix: string): ReplayGuard {
  return {
    async claim(key, ttlSeconds) {
      return (await redis.set(ownKey(prefix, 'webhook-seen', key), '1', 'EX', ttlSeconds, 'NX')) === 'OK';
    },
  };
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function parseJsonBody(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new WebhookError(400, 'invalid_json', 'The body is not valid JSON');
  }
}

/** Rejects a signed unix timestamp outside the tolerance (both directions: clocks drift). */
export function checkTimestamp(unixSeconds: number, now: Date, toleranceSeconds: number): void {
  if (!Number.isFinite(unixSeconds) || Math.abs(now.getTime() / 1000 - unixSeconds) > toleranceSeconds) {
    throw new WebhookError(401, 'expired_signature', 'The signed timestamp is outside the accepted window');
  }
}

export const badSignature = (message = 'The signature does not match') => new WebhookError(401, 'invalid_signature', message);
export const missingSignature = (what: string) => new WebhookError(401, 'missing_signature', `${what} is missing`);

/** A zod failure on a verified body: malformed, 400. */
export function malformed(err: { issues: Array<{ path: PropertyKey[]; message: string }> }): WebhookError {
  const first = err.issues[0];
  return new WebhookError(
    400,
    'invalid_payload',
    first ? `${first.path.map(String).join('.') || 'body'}: ${first.message}` : 'Invalid payload',
  );
}

export const isoFromSeconds = (s: number) => new Date(Math.round(s * 1000)).toISOString();
