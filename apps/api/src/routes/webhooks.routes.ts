import express, { Router } from 'express';
import { deliveryEventJobId, WEBHOOK_PROVIDERS, type DeliveryEvent, type WebhookProvider } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { HttpError } from '../http-error';
import { createReplayGuard, WebhookError, type WebhookAdapter } from '../webhooks/common';
import { mailgunAdapter } from '../webhooks/mailgun';
import { mailroomAdapter } from '../webhooks/mailroom';
import { postmarkAdapter } from '../webhooks/postmark';
import { sendgridAdapter } from '../webhooks/sendgrid';
import { sesAdapter } from '../webhooks/ses';

/** The adapters whose key is configured; the others answer 404. */
export function webhookAdapters(deps: Pick<ApiDeps, 'config' | 'redis' | 'snsHttp'>): Map<WebhookProvider, WebhookAdapter> {
  const w = deps.config.webhooks;
  const replay = createReplayGuard(deps.redis, deps.config.queuePrefix);
  const all: Array<WebhookAdapter | null> = [
    w.secret ? mailroomAdapter(w.secret, replay) : null,
    w.mailgunSigningKey ? mailgunAdapter(w.mailgunSigningKey, replay) : null,
    w.sendgridVerificationKey ? sendgridAdapter(w.sendgridVerificationKey, replay) : null,
    w.postmarkAuth ? postmarkAdapter(w.postmarkAuth) : null,
    w.sesTopicArns.length ? sesAdapter(w.sesTopicArns, deps.snsHttp) : null,
  ];
  return new Map(all.flatMap((a) => (a ? [[a.provider, a] as const] : [])));
}

/** Enqueues events with job id = provider event id: a redelivered event is not queued twice. */
export async function enqueueEvents(deps: Pick<ApiDeps, 'deliveryEvents' | 'log'>, events: DeliveryEvent[]): Promise<void> {
  if (events.length === 0) return;
  try {
    await deps.deliveryEvents.addBulk(events.map((e) => ({ name: e.type, data: e, opts: { jobId: deliveryEventJobId(e) } })));
  } catch (err) {
    deps.log.error({ err, count: events.length }, 'delivery events could not be queued');
    throw new HttpError(503, 'queue_unavailable', 'The events could not be queued; retry later', undefined, { 'Retry-After': '5' });
  }
}

/**
 * `POST /v1/webhooks/:provider`: verify, map, enqueue, answer. Nothing is applied here (the
 * delivery-event worker does that), so the answer is fast. Mounted before the JSON parser:
 * signatures are over the raw bytes.
 */
export function webhooksRoutes(deps: ApiDeps): Router {
  const router = Router();
  const adapters = webhookAdapters(deps);
  const raw = express.raw({ type: () => true, limit: '5mb' });
  router.post('/v1/webhooks/:provider', raw, async (req, res) => {
    const provider = req.params.provider as WebhookProvider;
    const adapter = WEBHOOK_PROVIDERS.includes(provider) ? adapters.get(provider) : undefined;
    if (!adapter) throw new HttpError(404, 'not_found', 'No webhook is configured for this provider');
    let result;
    try {
      result = await adapter.handle({
        headers: req.headers,
        rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
        now: new Date(),
      });
    } catch (err) {
      if (err instanceof WebhookError) throw new HttpError(err.status, err.code, err.message);
      throw err;
    }
    await enqueueEvents(deps, result.events);
    if (result.reply) res.status(result.reply.status).json(result.reply.body);
    else res.status(200).json({ received: result.events.length });
  });
  return router;
}
