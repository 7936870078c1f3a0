import { createHmac, timingSafeEqual } from 'node:crypto';
import { EMAIL_ID_PATTERN } from '@mailroom/shared';

/**
 * The page's Preview shows an email's HTML in a sandboxed iframe whose document comes from
 * `GET /v1/email-logs/:id/preview`, so that it carries a Content-Security-Policy of its own
 * (an `srcdoc` frame would inherit the page's, which forbids the inline styles emails need).
 * An iframe cannot send the admin key, so the page first asks for a short-lived link:
 *
 *   token: pv1.<workspaceId>.<emailId>.<expires, unix seconds>.<base64url HMAC-SHA256, 16 bytes>
 *
 * under a key derived from SECRETS_KEY (`deriveKey('preview-v1')`). The link shows one entry of
 * one workspace, read-only, for PREVIEW_TTL_SECONDS.
 */
export const PREVIEW_TTL_SECONDS = 600;
const MAC_BYTES = 16;
const WORKSPACE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface PreviewTokens {
  issue(workspaceId: string, emailId: string, now?: Date): { token: string; expiresAt: Date };
  /** The workspace and email of a valid, unexpired token for `emailId`, else null. */
  verify(token: string, emailId: string, now?: Date): { workspaceId: string } | null;
}

export function createPreviewTokens(key: Buffer): PreviewTokens {
  const mac = (what: string) => createHmac('sha256', key).update(what).digest().subarray(0, MAC_BYTES);
  return {
    issue(workspaceId, emailId, now = new Date()) {
      const expires = Math.floor(now.getTime() / 1000) + PREVIEW_TTL_SECONDS;
      const body = `pv1.${workspaceId}.${emailId}.${expires}`;
      return { token: `${body}.${mac(body).toString('base64url')}`, expiresAt: new Date(expires * 1000) };
    },
    verify(token, emailId, now = new Date()) {
      if (token.length > 400) return null;
      const parts = token.split('.');
      if (parts.length !== 5 || parts[0] !== 'pv1') return null;
      const [, workspaceId, id, expires, presented] = parts as [string, string, string, string, string];
      if (id !== emailId || !EMAIL_ID_PATTERN.test(id) || !WORKSPACE_ID.test(workspaceId) || !/^\d{1,12}$/.test(expires)) return null;
      const given = Buffer.from(presented, 'base64url');
      const expected = mac(parts.slice(0, 4).join('.'));
      if (given.length !== MAC_BYTES || given.toString('base64url') !== presented || !timingSafeEqual(given, expected)) return null;
      if (Number(expires) * 1000 < now.getTime()) return null;
      return { workspaceId };
    },
  };
}

/**
 * The policy of a preview document: nothing runs, nothing is submitted, nothing leaves the
 * frame; inline styles render; images only from `data:` until the reader asks for remote ones
 * (a remote image tells the sender the email was opened, and from where).
 */
export function previewCsp(remoteImages: boolean): string {
  return [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `img-src data:${remoteImages ? ' https: http:' : ''}`,
    'font-src data:',
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'self'",
    'sandbox',
  ].join('; ');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The document shown in the frame. A `<meta http-equiv="refresh">` would navigate the frame to a
 * remote page (which no policy above stops): it is neutralised. A text-only email is shown as
 * preformatted text.
 */
export function previewDocument(content: { html?: string | undefined; text?: string | undefined }): string {
  if (content.html !== undefined) {
    return content.html.replace(/<meta\b[^>]*http-equiv\s*=\s*["']?\s*refresh[^>]*>/gi, '');
  }
  const text = content.text ?? '';
  return `<!doctype html><meta charset="utf-8"><pre style="white-space:pre-wrap;font:14px/1.5 ui-monospace,monospace;margin:16px">${escapeHtml(text)}</pre>`;
}
