import { randomUUID } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import type { DeliveryEvent } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { HttpError, parseOr400 } from '../http-error';
import { enqueueEvents } from './webhooks.routes';

/** A transparent 1×1 GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/**
 * User agents that fetch images or follow links without a person: security scanners and
 * privacy prefetchers. Not listed on purpose: GoogleImageProxy and YahooMailProxy (Gmail and
 * Yahoo fetch images through them when a person opens the email) and `ms-office` (Outlook
 * desktop rendering the email for its reader).
 */
export const MACHINE_USER_AGENTS: ReadonlyArray<{ pattern: RegExp; who: string }> = [
  // Apple Mail Privacy Protection prefetches every remote image through Apple's proxies.
  { pattern: /^Mozilla\/5\.0$/, who: 'Apple Mail Privacy Protection' },
  { pattern: /Barracuda/i, who: 'Barracuda' },
  { pattern: /Mimecast/i, who: 'Mimecast' },
  { pattern: /Proofpoint|ppops-/i, who: 'Proofpoint' },
  { pattern: /SafeLinks|Safe Links|BingPreview|Microsoft Office Protection/i, who: 'Microsoft Defender' },
  { pattern: /Symantec|Trend ?Micro|Forcepoint|IronPort|Sophos|SpamTitan|Zscaler/i, who: 'mail security gateway' },
  {
    pattern: /HeadlessChrome|PhantomJS|python-requests|python-urllib|Go-http-client|curl\/|Wget|okhttp|Java\/|libwww|bot\b|crawler|spider/i,
    who: 'automated client',
  },
];

export function machineUserAgent(ua: string | undefined): string | null {
  if (!ua || !ua.trim()) return 'no user agent';
  return MACHINE_USER_AGENTS.find((m) => m.pattern.test(ua))?.who ?? null;
}

export const TrackingSettings = z.object({ enabled: z.boolean() }).strict();

/**
 * The tracking pixel, tracked links and the workspace switch. The pixel answers the same GIF
 * whatever the token (a broken image helps nobody); only a valid token records an open. A
 * click redirects only to the URL its token signs.
 */
export function trackingRoutes(deps: ApiDeps): Router {
  const router = Router();

  const event = (req: Request, type: 'opened' | 'clicked', emailId: string, url?: string): DeliveryEvent => {
    const now = new Date().toISOString();
    return {
      id: `${type === 'opened' ? 'o' : 'c'}-${randomUUID()}`,
      provider: 'tracking',
      type,
      at: now,
      receivedAt: now,
      emailId,
      ...(url ? { url } : {}),
      ...(machineUserAgent(req.header('user-agent')) ? { machine: true } : {}),
    };
  };

  router.get('/t/o/:file', async (req, res) => {
    const token = req.params.file.replace(/\.gif$/, '');
    const valid = deps.trackingTokens.verifyOpen(token);
    if (valid) {
      // An open we cannot queue is lost, but the image must still load.
      await enqueueEvents(deps, [event(req, 'opened', valid.emailId)]).catch(() => undefined);
    }
    res.set({ 'Content-Type': 'image/gif', 'Cache-Control': 'no-store, no-cache, must-revalidate, private', Pragma: 'no-cache' });
    res.status(200).end(PIXEL);
  });

  router.get('/t/c/:token', async (req, res) => {
    const valid = deps.trackingTokens.verifyClick(req.params.token);
    if (!valid) throw new HttpError(400, 'invalid_link', 'This link is not valid');
    await enqueueEvents(deps, [event(req, 'clicked', valid.emailId, valid.url)]).catch(() => undefined);
    res.set('Cache-Control', 'no-store').redirect(302, valid.url);
  });

  router.get('/v1/settings/tracking', deps.requireKey('admin'), async (req, res) => {
    const enabled = await deps.trackingSettings.isEnabled(req.apiKey!.workspaceId);
    res.json({ enabled, globallyEnabled: deps.config.tracking.enabled });
  });

  router.put('/v1/settings/tracking', deps.requireKey('admin'), async (req, res) => {
    const { enabled } = parseOr400(TrackingSettings, req.body);
    const workspaceId = req.apiKey!.workspaceId;
    await deps.trackingSettings.setEnabled(workspaceId, enabled);
    await deps.activity.record({
      workspaceId,
      action: 'settings.changed',
      actorKeyId: req.apiKey!.keyId,
      target: 'tracking',
      details: { enabled },
    });
    res.json({ enabled, globallyEnabled: deps.config.tracking.enabled });
  });
  return router;
}
