import type { TrackingTokens } from '@mailroom/shared';

/**
 * Open and click tracking, applied to the HTML part at send time (the stored content stays
 * untracked, so a resend gets tokens of its own). Only http(s) links in `<a href>` are
 * rewritten: mailto:, tel:, anchors and links marked `data-mailroom-notrack` stay as they are.
 */

const ANCHOR_HREF = /(<a\b[^>]*?\bhref\s*=\s*)("([^"]*)"|'([^']*)')([^>]*>)/gi;

/** The entities an href is likely to carry; decoding them gives the URL the browser would follow. */
const ENTITIES: Readonly<Record<string, string>> = { '&amp;': '&', '&quot;': '"', '&#39;': "'", '&lt;': '<', '&gt;': '>' };

const decode = (s: string) => s.replace(/&(amp|quot|#39|lt|gt);/g, (m) => ENTITIES[m] ?? m);
const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');

export function rewriteLinks(html: string, clickUrl: (target: string) => string): string {
  return html.replace(ANCHOR_HREF, (whole, start: string, _quoted: string, dq: string | undefined, sq: string | undefined, end: string) => {
    if (/data-mailroom-notrack/i.test(whole)) return whole;
    const target = decode((dq ?? sq ?? '').trim());
    if (!/^https?:\/\/[^\s]+$/i.test(target)) return whole;
    return `${start}"${escapeAttr(clickUrl(target))}"${end}`;
  });
}

export function addPixel(html: string, pixelUrl: string): string {
  const img = `<img src="${escapeAttr(pixelUrl)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />`;
  const close = html.search(/<\/body\s*>/i);
  return close === -1 ? html + img : html.slice(0, close) + img + html.slice(close);
}

/** The HTML as sent: links through `/t/c/<token>` and a pixel `/t/o/<token>.gif` before `</body>`. */
export function applyTracking(html: string, emailId: string, tokens: TrackingTokens, publicUrl: string): string {
  const rewritten = rewriteLinks(html, (url) => `${publicUrl}/t/c/${tokens.clickToken(emailId, url)}`);
  return addPixel(rewritten, `${publicUrl}/t/o/${tokens.openToken(emailId)}.gif`);
}
