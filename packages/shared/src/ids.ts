import { randomBytes, randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function encodeTime(ms: number, length: number): string {
  let out = '';
  let rest = ms;
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time (as `randomUUID` does): one
 * `randomBytes` call per id cost the API more than the rest of making the id.
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomChars(length: number): string {
  if (poolOffset + length > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let out = '';
  for (let i = 0; i < length; i++) out += CROCKFORD[pool[poolOffset + i]! % 32];
  // Each byte is used once: the next id reads past it.
  poolOffset += length;
  return out;
}

/**
 * A time-sortable id (ULID layout: 10 characters of milliseconds, 16 random) behind a prefix,
 * so ids sort by creation time and make stable tie-breakers for cursors.
 */
export function newId(prefix: 'em' | 'ws' | 'key' | 'act' | 'we' | 'wd', now: number = Date.now()): string {
  return `${prefix}_${encodeTime(now, 10)}${randomChars(16)}`;
}

/** A URL-safe random secret of `bytes` bytes of entropy. */
export function randomSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export const EMAIL_ID_PATTERN = /^em_[0-9A-HJKMNP-TV-Z]{26}$/;

/** The creation time (ms) a {@link newId} id carries, or null for an id of another shape. */
export function idTime(id: string): number | null {
  const m = /^[a-z]+_([0-9A-HJKMNP-TV-Z]{10})[0-9A-HJKMNP-TV-Z]{16}$/.exec(id);
  if (!m) return null;
  let ms = 0;
  for (const c of m[1]!) ms = ms * 32 + CROCKFORD.indexOf(c);
  return ms;
}
