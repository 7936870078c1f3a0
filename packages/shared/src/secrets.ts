import { createCipheriv, createDecipheriv, createHash, createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Encryption of stored credentials (SMTP passwords, OAuth secrets) with AES-256-GCM under a
 * key derived from `SECRETS_KEY`. The ciphertext is self-describing (`v1.<iv>.<tag>.<data>`)
 * so the key derivation can change later without guessing.
 */
export interface SecretBox {
  seal(plain: string): string;
  open(sealed: string): string;
  /** A sub-key for another purpose (tracking tokens, webhook secrets), derived, never the raw key. */
  deriveKey(purpose: string): Buffer;
}

export function createSecretBox(secretsKey: string): SecretBox {
  const root = createHash('sha256').update(`mailroom:${secretsKey}`).digest();
  const deriveKey = (purpose: string) => createHmac('sha256', root).update(purpose).digest();
  const encKey = deriveKey('settings-encryption-v1');
  return {
    deriveKey,
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', encKey, iv);
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return ['v1', iv.toString('base64url'), tag.toString('base64url'), data.toString('base64url')].join('.');
    },
    open(sealed) {
      const [version, iv, tag, data] = sealed.split('.');
      if (version !== 'v1' || !iv || !tag || data === undefined) throw new Error('Unreadable sealed secret');
      const decipher = createDecipheriv('aes-256-gcm', encKey, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    },
  };
}

/** SHA-256 hex digest: how API keys and idempotency keys are stored. */
export function sha256Hex(text: string): string {
  // One-shot: no Hash object per call (the API hashes the presented key on every request).
  return hash('sha256', text, 'hex');
}

/** Constant-time string comparison (for tokens compared in memory). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
