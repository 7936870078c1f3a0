import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Router, type Request, type Response } from 'express';

const WEB_DIR = path.join(__dirname, '..', 'web');

/** The page's assets: no build step, served as written. */
const ASSETS = {
  // chart.js before app.js: app.js imports it by its hashed name.
  'chart.js': 'text/javascript; charset=utf-8',
  'styles.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
} as const;
type AssetName = keyof typeof ASSETS;

/**
 * No inline script or style, no third party: the page only talks to this API. `data:` images
 * cover the empty favicon that keeps browsers from asking for `/favicon.ico`. The one frame is
 * the email preview, served by this API under a stricter policy of its own.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function load(file: string, type: string, transform: (text: string) => string = (t) => t): Asset {
  const body = Buffer.from(transform(readFileSync(path.join(WEB_DIR, file), 'utf8')));
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

function send(req: Request, res: Response, asset: Asset, cacheControl: string): void {
  res.set({
    'Content-Type': asset.type,
    'Cache-Control': cacheControl,
    ETag: asset.etag,
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
  });
  if (req.get('if-none-match') === asset.etag) {
    res.status(304).end();
    return;
  }
  res.send(asset.body);
}

/**
 * The email log page ("Settings > Management > Email logs") at `GET /`. The files are read once
 * when the router is built. The page links its assets by content hash, so those URLs are
 * cached for a year; the page itself is revalidated on every load.
 */
export function webRoutes(): Router {
  const assets = new Map<string, Asset>();
  const hashed = new Map<AssetName, string>();
  for (const [name, type] of Object.entries(ASSETS) as [AssetName, string][]) {
    // app.js names its modules by their hashed names, so they are cached as long as it is.
    const asset = load(name, type, (text) => text.replace(/'\.\/(chart\.js)'/g, (_m, dep: AssetName) => `'./${hashed.get(dep)}'`));
    const dot = name.lastIndexOf('.');
    const versioned = `${name.slice(0, dot)}.${asset.etag.slice(1, 11)}${name.slice(dot)}`;
    assets.set(name, asset);
    assets.set(versioned, asset);
    hashed.set(name, versioned);
  }
  const page = load('index.html', 'text/html; charset=utf-8', (html) =>
    html.replace(/\/assets\/(app\.js|styles\.css)/g, (_m, name: AssetName) => `/assets/${hashed.get(name)}`),
  );
  const versionedNames = new Set(hashed.values());

  const router = Router();
  router.get(['/', '/index.html'], (req, res) => {
    send(req, res, page, 'no-cache');
  });
  router.get('/assets/:file', (req, res, next) => {
    const asset = assets.get(req.params.file);
    if (!asset) return next();
    send(req, res, asset, versionedNames.has(req.params.file) ? 'public, max-age=31536000, immutable' : 'no-cache');
  });
  return router;
}
