import { createHmac, timingSafeEqual } from 'node:crypto';
import { EMAIL_ID_PATTERN } from './ids';

/**
 * Open and click tracking tokens: the email id (and for clicks the exact target URL) with an
 * HMAC-SHA256 under a key derived from SECRETS_KEY (`deriveKey('tracking-v1')`). Verifying
 * needs no database read, and a click token cannot be pointed at another URL, so the click
 * route is never an open redirect.
 *
 *   open:  o1.<emailId>.<mac>
 *   click: c1.<emailId>.<base64url(url)>.<mac>
 */
export interface TrackingTokens {
  openToken(emailId: string): string;
  clickToken(emailId: string, url: string): string;
  /** The email id of a valid open token, else null. */
  verifyOpen(token: string): { emailId: string } | null;
  /** The email id and signed URL of a valid click token, else null. */
  verifyClick(token: string): { emailId: string; url: string } | null;
}

/** 16 bytes of HMAC: forging one is as hard as guessing a 128-bit key. */
const MAC_BYTES = 16;
const MAX_TOKEN_LENGTH = 8192;

export function createTrackingTokens(key: Buffer): TrackingTokens {
  const mac = (what: string) => createHmac('sha256', key).update(what).digest().subarray(0, MAC_BYTES);
  const check = (what: string, presented: string) => {
    const given = Buffer.from(presented, 'base64url');
    return given.length === MAC_BYTES && presented === given.toString('base64url') && timingSafeEqual(given, mac(what));
  };
  return {
    openToken(emailId) {
      return `o1.${emailId}.${mac(`o1|${emailId}`).toString('base64url')}`;
    },
    clickToken(emailId, url) {
      return `c1.${emailId}.${Buffer.from(url, 'utf8').toString('base64url')}.${mac(`c1|${emailId}|${url}`).toString('base64url')}`;
    },
    verifyOpen(token) {
      if (token.length > MAX_TOKEN_LENGTH) return null;
      const [v, emailId, m, ...rest] = token.split('.');
      if (v !== 'o1' || !emailId || !m || rest.length || !EMAIL_ID_PATTERN.test(emailId)) return null;
      return check(`o1|${emailId}`, m) ? { emailId } : null;
    },
    verifyClick(token) {
      if (token.length > MAX_TOKEN_LENGTH) return null;
      const [v, emailId, u, m, ...rest] = token.split('.');
      if (v !== 'c1' || !emailId || !u || !m || rest.length || !EMAIL_ID_PATTERN.test(emailId)) return null;
      const url = Buffer.from(u, 'base64url').toString('utf8');
      if (Buffer.from(url, 'utf8').toString('base64url') !== u || !/^https?:\/\//i.test(url)) return null;
      return check(`c1|${emailId}|${url}`, m) ? { emailId, url } : null;
    },
  };
}
