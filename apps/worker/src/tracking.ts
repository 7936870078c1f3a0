import type { TrackingTokens } from '@mailroom/shared';

/**
 * Open and click tracking, applied at send time (the stored content stays untracked, so a
 * resend gets tokens of its own). In the HTML part only http(s) links in `<a href>` are
 * rewritten: mailto:, tel:, anchors and links marked `data-mailroom-notrack` stay as they are.
 * In the text part, bare http(s) URLs are rewritten, so a text-only email is tracked too (it
 * has no pixel: opens of text can't be seen).
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

/** A bare URL in text; sentence punctuation after it is not part of it. */
const TEXT_URL = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}]+$/;

export function rewriteTextLinks(text: string, clickUrl: (target: string) => string): string {
  return text.replace(TEXT_URL, (found) => {
    const tail = TRAILING.exec(found)?.[0] ?? '';
    const url = found.slice(0, found.length - tail.length);
    // A closing parenthesis that belongs to the URL (Wikipedia style) stays with it.
    const keep = tail.startsWith(')') && url.includes('(') ? ')' : '';
    const target = url + keep;
    return clickUrl(target) + tail.slice(keep.length);
  });
}

export function addPixel(html: string, pixelUrl: string): string {
  const img = `<img src="${escapeAttr(pixelUrl)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />`;
  const close = html.search(/<\/body\s*>/i);
  return close === -1 ? html + img : html.slice(0, close) + img + html.slice(close);
}

/**
 * The parts as sent: HTML links through `/t/c/<token>` and a pixel `/t/o/<token>.gif` before
 * `</body>`; text URLs through `/t/c/<token>`.
 */
export function applyTracking(
  parts: { html?: string | undefined; text?: string | undefined },
  emailId: string,
  tokens: TrackingTokens,
  publicUrl: string,
): { html?: string; text?: string } {
  const click = (url: string) => `${publicUrl}/t/c/${tokens.clickToken(emailId, url)}`;
  return {
    ...(parts.html !== undefined
      ? { html: addPixel(rewriteLinks(parts.html, click), `${publicUrl}/t/o/${tokens.openToken(emailId)}.gif`) }
      : {}),
    ...(parts.text !== undefined ? { text: rewriteTextLinks(parts.text, click) } : {}),
  };
}
