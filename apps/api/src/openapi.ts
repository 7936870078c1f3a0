import { z } from 'zod';
import {
  CreateWorkspaceRequest,
  EmailLogFilterQuery,
  EmailLogListQuery,
  EmailLogStatsQuery,
  EmailSettingsInput,
  SendEmailRequest,
  TestSendRequest,
} from '@mailroom/shared';
import { ActivityListQuery } from './routes/activity.routes';
import { EmailLogIdParams, EmailPreviewQuery } from './routes/email-logs.routes';
import { PREVIEW_TTL_SECONDS } from './preview';
import { RetentionRunRequest } from './routes/admin.routes';
import { DELIVERY_EVENT_ROUTES } from './routes/delivery-events.docs';
import { OBSERVABILITY_ROUTES } from './routes/observability.docs';

/**
 * The API description, generated from the zod schemas the routes validate with, so the
 * document cannot drift from what the routes accept. Add a route here when you add one.
 */
export type ApiAuth = 'none' | 'operator' | 'admin' | 'send_or_admin' | 'operator_basic';

export interface ApiRouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI style: `/v1/email-logs/{id}`. */
  path: string;
  summary: string;
  tag: string;
  auth: ApiAuth;
  body?: z.ZodType;
  query?: z.ZodObject | z.ZodType;
  params?: z.ZodObject;
  /** status → description (and the media type when not JSON). */
  responses: Record<string, string | { description: string; contentType: string }>;
}

const IdParam = z.object({ id: z.string() });

/** Every route of the API; other modules may append theirs (`API_ROUTES.push(...)`) before the document is built. */
export const API_ROUTES: ApiRouteDoc[] = [
  { method: 'get', path: '/healthz', summary: 'The process answers', tag: 'health', auth: 'none', responses: { '200': 'ok' } },
  {
    method: 'get',
    path: '/readyz',
    summary: 'Redis and both databases answer',
    tag: 'health',
    auth: 'none',
    responses: { '200': 'ready', '503': 'a dependency is down' },
  },
  {
    method: 'post',
    path: '/v1/workspaces',
    summary: 'Create a workspace and its send and admin keys (shown once)',
    tag: 'operators',
    auth: 'operator',
    body: CreateWorkspaceRequest,
    responses: { '201': '{id, name, createdAt, keys: {send, admin}}', '400': 'invalid body', '401': 'not an operator' },
  },
  {
    method: 'post',
    path: '/v1/emails',
    summary: 'Queue an email (send with the Idempotency-Key header to make retries safe)',
    tag: 'emails',
    auth: 'send_or_admin',
    body: SendEmailRequest,
    responses: {
      '202': '{id, status: "queued"}',
      '400': 'invalid body',
      '409': 'Idempotency-Key reused with another body',
      '413': 'attachments too large',
      '429': 'rate limited',
    },
  },
  {
    method: 'get',
    path: '/v1/settings/email',
    summary: 'The custom email settings (secrets never returned)',
    tag: 'settings',
    auth: 'admin',
    responses: { '200': '{connected, settings}' },
  },
  {
    method: 'put',
    path: '/v1/settings/email',
    summary: 'Connect a custom email (SMTP, Google or Outlook)',
    tag: 'settings',
    auth: 'admin',
    body: EmailSettingsInput,
    responses: { '200': '{connected: true, settings}', '400': 'invalid body' },
  },
  {
    method: 'delete',
    path: '/v1/settings/email',
    summary: 'Disconnect the custom email; sends go through the managed transport again',
    tag: 'settings',
    auth: 'admin',
    responses: { '204': 'disconnected' },
  },
  {
    method: 'post',
    path: '/v1/settings/email/test',
    summary: 'Send a test email now and wait for the outcome',
    tag: 'settings',
    auth: 'admin',
    body: TestSendRequest,
    responses: { '200': '{ok: true, id, …} or {ok: false, errorCode, errorHint, error}', '504': 'no outcome in time' },
  },
  {
    method: 'post',
    path: '/v1/admin/retention/run',
    summary: 'Run the retention cleanup now',
    tag: 'operators',
    auth: 'operator',
    body: RetentionRunRequest,
    responses: { '200': '{removed, cutoff, …}' },
  },
  {
    method: 'get',
    path: '/v1/email-logs',
    summary: 'The email log, newest first, in keyset pages (pass nextCursor as cursor); list filters take commas or repeats',
    tag: 'email log',
    auth: 'admin',
    query: EmailLogListQuery,
    responses: { '200': '{items, nextCursor, customEmailConnected, banner}', '400': 'bad filter or cursor' },
  },
  {
    method: 'get',
    path: '/v1/email-logs/export.csv',
    summary: 'The filtered log as CSV, streamed, no row cap',
    tag: 'email log',
    auth: 'admin',
    query: EmailLogFilterQuery,
    responses: { '200': { description: 'CSV with a header row', contentType: 'text/csv' }, '400': 'bad filter' },
  },
  {
    method: 'get',
    path: '/v1/email-logs/stats',
    summary: 'Counts by status, type and send method, and delivery/bounce/complaint/open rates, per UTC day',
    tag: 'email log',
    auth: 'admin',
    query: EmailLogStatsQuery,
    responses: { '200': '{since, until, days: [...], totals}', '400': 'bad range' },
  },
  {
    method: 'get',
    path: '/v1/email-logs/{id}',
    summary: 'One entry with its event timeline and resend links',
    tag: 'email log',
    auth: 'admin',
    params: EmailLogIdParams,
    responses: { '200': 'the entry, timeline, resends, links', '404': 'no such entry in this workspace' },
  },
  {
    method: 'post',
    path: '/v1/email-logs/{id}/resend',
    summary: 'Send the same content to the same recipient again, as a new entry',
    tag: 'email log',
    auth: 'admin',
    params: EmailLogIdParams,
    responses: { '202': '{id, resendOf}', '404': 'no such entry, or past retention', '409': 'recipient suppressed' },
  },
  {
    method: 'get',
    path: '/v1/email-logs/{id}/content',
    summary: 'What was sent, as the application submitted it (what resends use); attachments listed without their bytes',
    tag: 'email log',
    auth: 'admin',
    params: EmailLogIdParams,
    responses: {
      '200': '{subject, from, to, cc, bcc, replyTo, html, text, headers: [{name, value}], attachments: [{filename, contentType, size}]}',
      '403': 'a send key',
      '404': 'no such entry in this workspace, or past retention',
    },
  },
  {
    method: 'post',
    path: '/v1/email-logs/{id}/preview-link',
    summary: `A link (valid ${PREVIEW_TTL_SECONDS / 60} minutes) to the HTML preview of the entry, for a sandboxed iframe`,
    tag: 'email log',
    auth: 'admin',
    params: EmailLogIdParams,
    responses: { '201': '{url, expiresAt}', '404': 'no such entry in this workspace, or past retention' },
  },
  {
    method: 'get',
    path: '/v1/email-logs/{id}/preview',
    summary:
      'The HTML as submitted, under a policy that runs no script, submits no form and loads remote images only with images=1 (the token comes from preview-link)',
    tag: 'email log',
    auth: 'none',
    params: EmailLogIdParams,
    query: EmailPreviewQuery,
    responses: {
      '200': { description: 'the email as an HTML document', contentType: 'text/html' },
      '401': 'token missing, wrong or expired',
      '404': 'past retention',
    },
  },
  {
    method: 'get',
    path: '/v1/activity',
    summary: "What admins and operators did in the key's workspace, newest first",
    tag: 'activity',
    auth: 'admin',
    query: ActivityListQuery,
    responses: { '200': '{items, nextCursor}' },
  },
  {
    method: 'get',
    path: '/admin/queues',
    summary: 'Bull Board (HTML) for operators: basic auth with the operator token as password',
    tag: 'operators',
    auth: 'operator_basic',
    responses: { '200': { description: 'the board', contentType: 'text/html' }, '401': 'not an operator' },
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    tag: 'health',
    auth: 'none',
    responses: { '200': 'OpenAPI 3.1' },
  },
  ...DELIVERY_EVENT_ROUTES,
  ...OBSERVABILITY_ROUTES,
];

type Json = Record<string, unknown>;

/** JSON Schema of what a client sends; a `z.preprocess` is described by the schema it feeds. */
function jsonSchema(schema: z.ZodType): Json {
  const out = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const def = (ctx.zodSchema as unknown as { _zod: { def: { type: string; in?: z.ZodType; out?: z.ZodType } } })._zod.def;
      if (def.type === 'pipe' && (def.in as unknown as { _zod: { def: { type: string } } })._zod.def.type === 'transform') {
        Object.assign(ctx.jsonSchema, jsonSchema(def.out!));
      }
    },
  }) as Json;
  delete out.$schema;
  return out;
}

function parameters(schema: z.ZodType | undefined, where: 'query' | 'path'): Json[] {
  if (!schema) return [];
  const s = jsonSchema(schema);
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || (required.has(name) && p.default === undefined),
    schema: p,
    ...(p.type === 'array' ? { style: 'form', explode: true } : {}),
  }));
}

/** The query parameters a route names, and whether each may be repeated (list filters). */
export function queryParameters(route: Pick<ApiRouteDoc, 'query'>): Array<{ name: string; repeatable: boolean }> {
  return parameters(route.query, 'query').map((p) => ({ name: String(p.name), repeatable: (p.schema as Json).type === 'array' }));
}

const ERROR = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        fields: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  },
};

const SECURITY: Record<ApiAuth, Json[]> = {
  none: [],
  operator: [{ operatorToken: [] }],
  admin: [{ adminKey: [] }],
  send_or_admin: [{ sendKey: [] }, { adminKey: [] }],
  operator_basic: [{ operatorBasic: [] }, { operatorToken: [] }],
};

/** The OpenAPI 3.1 document of {@link API_ROUTES}. */
export function buildOpenApiDocument(serverUrl: string, routes: readonly ApiRouteDoc[] = API_ROUTES): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const responses: Json = {};
    for (const [status, d] of Object.entries(r.responses)) {
      const description = typeof d === 'string' ? d : d.description;
      const media = typeof d === 'string' ? (Number(status) >= 400 ? 'application/json' : undefined) : d.contentType;
      responses[status] = {
        description,
        ...(media ? { content: { [media]: { schema: Number(status) >= 400 ? ERROR : {} } } } : {}),
      };
    }
    paths[r.path] = {
      ...paths[r.path],
      [r.method]: {
        summary: r.summary,
        tags: [r.tag],
        operationId: `${r.method}${r.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
        security: SECURITY[r.auth],
        parameters: [...parameters(r.params ?? (r.path.includes('{id}') ? IdParam : undefined), 'path'), ...parameters(r.query, 'query')],
        ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body) } } } } : {}),
        responses,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Mailroom API', version: '1.0.0', description: 'Queue-driven email delivery with a searchable email log.' },
    servers: [{ url: serverUrl }],
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    components: {
      securitySchemes: {
        sendKey: { type: 'http', scheme: 'bearer', description: 'A workspace send key (mr_send_…)' },
        adminKey: { type: 'http', scheme: 'bearer', description: 'A workspace admin key (mr_admin_…)' },
        operatorToken: { type: 'http', scheme: 'bearer', description: 'OPERATOR_TOKEN' },
        operatorBasic: { type: 'http', scheme: 'basic', description: 'Any user name, OPERATOR_TOKEN as password' },
      },
    },
    paths,
  };
}
