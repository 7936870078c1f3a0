import type { RequestHandler } from 'express';
import { HttpError, type FieldError } from './http-error';
import { queryParameters, type ApiRouteDoc } from './openapi';

interface RouteQuery {
  method: string;
  pattern: RegExp;
  /** parameter name → whether it may be repeated (a list filter) */
  params: Map<string, boolean>;
}

/**
 * Routes whose query strings we do not own: tracking links are followed by mail clients and
 * link scanners that append their own parameters (refusing one would lose the reader's
 * click), and Bull Board's pages and API are the library's.
 */
const NOT_OURS = [/^\/t\//, /^\/admin\/queues(\/|$)/];

function compile(routes: readonly ApiRouteDoc[]): RouteQuery[] {
  return (
    routes
      .filter((r) => !NOT_OURS.some((p) => p.test(r.path)))
      .map((r) => ({
        method: r.method.toUpperCase(),
        pattern: new RegExp(`^${r.path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
        params: new Map(queryParameters(r).map((p) => [p.name, p.repeatable])),
        literal: r.path.split('{').length,
      }))
      // `/v1/email-logs/stats` before `/v1/email-logs/{id}`: fewer path parameters first.
      .sort((a, b) => a.literal - b.literal)
  );
}

/**
 * Refuses, for every documented route, a query parameter its schema does not name, bracket
 * syntax (`recipient[$gt]=`) and a parameter repeated where one value is allowed, with a 400
 * that names each one. The route's own zod schema then checks the values. A misspelt filter
 * (`stauts=bounced`) would otherwise be ignored and answer with every entry.
 */
export function strictQuery(routes: readonly ApiRouteDoc[]): RequestHandler {
  const compiled = compile(routes);
  return (req, _res, next) => {
    const q = req.url.indexOf('?');
    if (q < 0 || q === req.url.length - 1) return next();
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = compiled.find((r) => r.method === method && r.pattern.test(req.path));
    if (!route) return next();
    const fields: FieldError[] = [];
    for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
      const path = `query.${name}`;
      if (/[[\]]/.test(name)) fields.push({ path, message: 'bracket syntax is not accepted; pass plain values' });
      else if (!route.params.has(name)) fields.push({ path, message: 'unknown parameter' });
      else if (Array.isArray(value) && !route.params.get(name)) {
        fields.push({ path, message: `given ${value.length} times; one value is allowed` });
      }
    }
    if (fields.length === 0) return next();
    const first = fields[0]!;
    next(new HttpError(400, 'invalid_request', `${first.path}: ${first.message}`, fields));
  };
}
