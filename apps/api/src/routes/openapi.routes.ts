import { Router } from 'express';
import type { ApiDeps } from '../app';
import { buildOpenApiDocument } from '../openapi';

/** `GET /openapi.json`: built once, on first request, from the routes' own zod schemas. */
export function openapiRoutes(deps: ApiDeps): Router {
  const router = Router();
  let doc: unknown;
  router.get('/openapi.json', (_req, res) => {
    doc ??= buildOpenApiDocument(deps.config.publicUrl);
    res.json(doc);
  });
  return router;
}
