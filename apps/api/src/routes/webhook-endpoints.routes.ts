import { Router, type Request } from 'express';
import { z } from 'zod';
import {
  checkWebhookTarget,
  outboundWebhookJobId,
  toPublicEndpoint,
  WEBHOOK_MESSAGE_TYPES,
  WebhookTargetError,
  type ActivityAction,
  type WebhookDeliveryDoc,
} from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { HttpError, notFound, parseOr400 } from '../http-error';

const WebhookUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).max(2048);
const Events = z
  .array(z.enum(WEBHOOK_MESSAGE_TYPES))
  .min(1)
  .transform((a) => [...new Set(a)]);
const Description = z.string().trim().max(500);

export const CreateWebhookEndpointRequest = z.strictObject({
  url: WebhookUrl,
  /** Message types to send (default: all). */
  events: Events.optional(),
  description: Description.optional(),
});
export const UpdateWebhookEndpointRequest = z
  .strictObject({
    url: WebhookUrl.optional(),
    /** null: all message types again. */
    events: Events.nullable().optional(),
    enabled: z.boolean().optional(),
    description: Description.nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one of url, events, enabled, description');
export const WebhookEndpointParams = z.object({ id: z.string().regex(/^we_[0-9A-Z]{26}$/, 'not a webhook endpoint id') });
export const WebhookReplayParams = WebhookEndpointParams.extend({
  messageId: z.string().regex(/^msg_[A-Za-z0-9_-]{10,60}$/, 'not a message id'),
});
export const WebhookDeliveriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    .regex(/^wd_[0-9A-Z]{26}$/, 'not a cursor from this API')
    .optional(),
});

const deliveryView = (d: WebhookDeliveryDoc) => ({
  id: d._id,
  messageId: d.messageId,
  type: d.type,
  attempt: d.attempt,
  outcome: d.outcome,
  statusCode: d.statusCode,
  durationMs: d.durationMs,
  error: d.error,
  nextRetryAt: d.nextRetryAt ? d.nextRetryAt.toISOString() : null,
  replay: d.replay,
  at: d.at.toISOString(),
});

/**
 * Outbound webhook endpoints of the key's workspace (admin): CRUD, secret rotation, the delivery
 * attempts and replays. The secret is answered once, at creation or rotation; afterwards only its
 * last four characters. Every change goes to the activity log and bumps the endpoints' cache
 * version, so the next status change (any worker) sees it.
 */
export function webhookEndpointsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const admin = deps.requireKey('admin');
  const { webhookEndpoints: endpoints, webhookDirectory: directory } = deps.outboundWebhooks;

  const checkTarget = async (url: string) => {
    try {
      await checkWebhookTarget(url, deps.config.outboundWebhooks);
    } catch (err) {
      if (!(err instanceof WebhookTargetError)) throw err;
      throw new HttpError(400, 'target_not_allowed', `body.url: ${err.message}`, [{ path: 'body.url', message: err.message }]);
    }
  };
  const changed = async (req: Request, action: ActivityAction, target: string, details: Record<string, unknown> | null) => {
    const workspaceId = req.apiKey!.workspaceId;
    await directory.changed(workspaceId);
    await deps.activity.record({ workspaceId, action, actorKeyId: req.apiKey!.keyId, target, details });
  };
  const params = (req: Request) => parseOr400(WebhookEndpointParams, req.params, 'params');

  router.post('/v1/webhook-endpoints', admin, async (req, res) => {
    const body = parseOr400(CreateWebhookEndpointRequest, req.body);
    await checkTarget(body.url);
    const { endpoint, secret } = await endpoints.create(req.apiKey!.workspaceId, {
      url: body.url,
      events: body.events ?? null,
      description: body.description ?? null,
    });
    await changed(req, 'webhook_endpoint.created', endpoint._id, { url: endpoint.url, events: endpoint.events });
    res.status(201).json({ ...toPublicEndpoint(endpoint), secret });
  });

  router.get('/v1/webhook-endpoints', admin, async (req, res) => {
    res.json({ items: (await endpoints.list(req.apiKey!.workspaceId)).map(toPublicEndpoint) });
  });

  router.get('/v1/webhook-endpoints/:id', admin, async (req, res) => {
    const endpoint = await endpoints.get(req.apiKey!.workspaceId, params(req).id);
    if (!endpoint) throw notFound('Webhook endpoint');
    res.json(toPublicEndpoint(endpoint));
  });

  router.patch('/v1/webhook-endpoints/:id', admin, async (req, res) => {
    const { id } = params(req);
    const patch = parseOr400(UpdateWebhookEndpointRequest, req.body);
    if (patch.url !== undefined) await checkTarget(patch.url);
    const endpoint = await endpoints.update(req.apiKey!.workspaceId, id, patch);
    if (!endpoint) throw notFound('Webhook endpoint');
    await changed(req, 'webhook_endpoint.updated', id, patch);
    res.json(toPublicEndpoint(endpoint));
  });

  router.delete('/v1/webhook-endpoints/:id', admin, async (req, res) => {
    const { id } = params(req);
    if (!(await endpoints.remove(req.apiKey!.workspaceId, id))) throw notFound('Webhook endpoint');
    await changed(req, 'webhook_endpoint.deleted', id, null);
    res.status(204).end();
  });

  router.post('/v1/webhook-endpoints/:id/rotate-secret', admin, async (req, res) => {
    const { id } = params(req);
    const rotated = await endpoints.rotateSecret(req.apiKey!.workspaceId, id);
    if (!rotated) throw notFound('Webhook endpoint');
    const view = toPublicEndpoint(rotated.endpoint);
    await changed(req, 'webhook_endpoint.secret_rotated', id, { previousSecretExpiresAt: view.previousSecretExpiresAt });
    res.json({ ...view, secret: rotated.secret });
  });

  router.get('/v1/webhook-endpoints/:id/deliveries', admin, async (req, res) => {
    const { id } = params(req);
    const q = parseOr400(WebhookDeliveriesQuery, req.query, 'query');
    const workspaceId = req.apiKey!.workspaceId;
    if (!(await endpoints.get(workspaceId, id))) throw notFound('Webhook endpoint');
    const docs = await deps.outboundWebhooks.deliveries.list(workspaceId, id, {
      limit: q.limit,
      ...(q.cursor ? { before: q.cursor } : {}),
    });
    res.json({ items: docs.map(deliveryView), nextCursor: docs.length === q.limit ? docs[docs.length - 1]!._id : null });
  });

  router.post('/v1/webhook-endpoints/:id/deliveries/:messageId/replay', admin, async (req, res) => {
    const { id, messageId } = parseOr400(WebhookReplayParams, req.params, 'params');
    const workspaceId = req.apiKey!.workspaceId;
    const endpoint = await endpoints.get(workspaceId, id);
    if (!endpoint) throw notFound('Webhook endpoint');
    const message = await deps.outboundWebhooks.deliveries.getMessage(workspaceId, messageId);
    if (!message || !(await deps.outboundWebhooks.deliveries.wasSentTo(workspaceId, id, messageId))) {
      throw notFound('Message for this endpoint');
    }
    if (!endpoint.enabled) throw new HttpError(409, 'endpoint_disabled', 'The endpoint is disabled: enable it (PATCH enabled: true) first');
    const jobId = outboundWebhookJobId(messageId, id, Date.now());
    await deps.outboundWebhooks.queue.add(
      message.type,
      { messageId, endpointId: id, workspaceId, type: message.type, body: message.body },
      { jobId },
    );
    await deps.activity.record({
      workspaceId,
      action: 'webhook_endpoint.message_replayed',
      actorKeyId: req.apiKey!.keyId,
      target: id,
      details: { messageId },
    });
    res.status(202).json({ messageId, endpointId: id, status: 'queued' });
  });
  return router;
}
