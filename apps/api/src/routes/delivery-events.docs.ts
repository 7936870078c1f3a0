import { z } from 'zod';
import type { ApiRouteDoc } from '../openapi';
import { MailroomWebhookBody } from '../webhooks/mailroom';
import { SuppressionListQuery } from './suppressions.routes';
import { TrackingSettings } from './tracking.routes';

/** OpenAPI entries of the webhook, tracking and suppression routes (spread into API_ROUTES). */
export const DELIVERY_EVENT_ROUTES: ApiRouteDoc[] = [
  {
    method: 'post',
    path: '/v1/webhooks/{provider}',
    summary:
      'Provider delivery events (mailroom, mailgun, sendgrid, postmark, ses): verified, then queued. The body shown is the mailroom format, signed with Mailroom-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">',
    tag: 'webhooks',
    auth: 'none',
    params: z.object({ provider: z.enum(['mailroom', 'mailgun', 'sendgrid', 'postmark', 'ses']) }),
    body: MailroomWebhookBody,
    responses: {
      '200': '{received: <events queued>}',
      '400': 'malformed body (nothing queued)',
      '401': 'missing, wrong, expired or replayed signature (nothing queued)',
      '403': 'SNS topic not in SES_TOPIC_ARNS',
      '404': 'no key configured for this provider',
    },
  },
  {
    method: 'get',
    path: '/t/o/{token}.gif',
    summary: 'Open-tracking pixel: always a 1×1 GIF, no-store; a valid token records an open',
    tag: 'tracking',
    auth: 'none',
    params: z.object({ token: z.string() }),
    responses: { '200': { description: '1×1 GIF', contentType: 'image/gif' } },
  },
  {
    method: 'get',
    path: '/t/c/{token}',
    summary: 'Tracked link: a valid token records a click and redirects to the URL it signs',
    tag: 'tracking',
    auth: 'none',
    params: z.object({ token: z.string() }),
    responses: { '302': 'redirect to the signed URL', '400': 'invalid or tampered token (no redirect)' },
  },
  {
    method: 'get',
    path: '/v1/settings/tracking',
    summary: "The workspace's open/click tracking switch",
    tag: 'settings',
    auth: 'admin',
    responses: { '200': '{enabled, globallyEnabled}' },
  },
  {
    method: 'put',
    path: '/v1/settings/tracking',
    summary: 'Turn open/click tracking on or off for the workspace',
    tag: 'settings',
    auth: 'admin',
    body: TrackingSettings,
    responses: { '200': '{enabled, globallyEnabled}', '400': 'invalid body' },
  },
  {
    method: 'get',
    path: '/v1/suppressions',
    summary: 'Addresses not sent to (hard bounces, complaints), in address order',
    tag: 'suppressions',
    auth: 'admin',
    query: SuppressionListQuery,
    responses: { '200': '{items: [{address, reason, emailId, detail, createdAt}], next}' },
  },
  {
    method: 'delete',
    path: '/v1/suppressions/{address}',
    summary: 'Lift a suppression (recorded in the activity log)',
    tag: 'suppressions',
    auth: 'admin',
    params: z.object({ address: z.string() }),
    responses: { '204': 'removed', '404': 'not suppressed' },
  },
];
