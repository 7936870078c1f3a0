import type { ApiRouteDoc } from '../openapi';
import {
  CreateWebhookEndpointRequest,
  UpdateWebhookEndpointRequest,
  WebhookDeliveriesQuery,
  WebhookEndpointParams,
  WebhookReplayParams,
} from './webhook-endpoints.routes';

const ENDPOINT =
  '{id, url, events, description, enabled, disabledReason, disabledAt, secretLast4, previousSecretExpiresAt, failingSince, createdAt, updatedAt}';

/** OpenAPI entries of the outbound webhook endpoints and of `/metrics` (spread into API_ROUTES). */
export const OBSERVABILITY_ROUTES: ApiRouteDoc[] = [
  {
    method: 'post',
    path: '/v1/webhook-endpoints',
    summary: 'Register an outbound webhook endpoint (Standard Webhooks); the secret (whsec_…) is answered this once',
    tag: 'outbound webhooks',
    auth: 'admin',
    body: CreateWebhookEndpointRequest,
    responses: {
      '201': `${ENDPOINT} + secret`,
      '400': 'invalid body, or a target that is not allowed (private, loopback, link-local, http in production)',
    },
  },
  {
    method: 'get',
    path: '/v1/webhook-endpoints',
    summary: "The workspace's webhook endpoints (secrets never shown, only their last four characters)",
    tag: 'outbound webhooks',
    auth: 'admin',
    responses: { '200': `{items: [${ENDPOINT}]}` },
  },
  {
    method: 'get',
    path: '/v1/webhook-endpoints/{id}',
    summary: 'One webhook endpoint',
    tag: 'outbound webhooks',
    auth: 'admin',
    params: WebhookEndpointParams,
    responses: { '200': ENDPOINT, '404': 'no such endpoint in this workspace' },
  },
  {
    method: 'patch',
    path: '/v1/webhook-endpoints/{id}',
    summary: 'Change the URL, the message types (null: all), the description, or enable/disable it (enabling clears a failing stretch)',
    tag: 'outbound webhooks',
    auth: 'admin',
    params: WebhookEndpointParams,
    body: UpdateWebhookEndpointRequest,
    responses: { '200': ENDPOINT, '400': 'invalid body or target', '404': 'no such endpoint' },
  },
  {
    method: 'delete',
    path: '/v1/webhook-endpoints/{id}',
    summary: 'Delete a webhook endpoint (messages already queued for it are skipped)',
    tag: 'outbound webhooks',
    auth: 'admin',
    params: WebhookEndpointParams,
    responses: { '204': 'deleted', '404': 'no such endpoint' },
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/rotate-secret',
    summary: 'A new secret (answered this once); the previous one keeps signing beside it for 24 hours',
    tag: 'outbound webhooks',
    auth: 'admin',
    params: WebhookEndpointParams,
    responses: { '200': `${ENDPOINT} + secret`, '404': 'no such endpoint' },
  },
  {
    method: 'get',
    path: '/v1/webhook-endpoints/{id}/deliveries',
    summary: 'Delivery attempts, newest first: message id, type, attempt, outcome, status code, duration, error, next retry',
    tag: 'outbound webhooks',
    auth: 'admin',
    params: WebhookEndpointParams,
    query: WebhookDeliveriesQuery,
    responses: { '200': '{items, nextCursor}', '404': 'no such endpoint' },
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/deliveries/{messageId}/replay',
    summary: 'Send one message again to this endpoint (same webhook-id, signed anew)',
    tag: 'outbound webhooks',
    auth: 'admin',
    params: WebhookReplayParams,
    responses: {
      '202': '{messageId, endpointId, status: "queued"}',
      '404': 'no such endpoint, or the message was not sent to it',
      '409': 'endpoint disabled',
    },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: "Prometheus metrics of the API process (text exposition format), with every queue's job counts",
    tag: 'operators',
    auth: 'operator_basic',
    responses: { '200': { description: 'metrics', contentType: 'text/plain; version=0.0.4' }, '401': 'not an operator' },
  },
];
