import type { RedisClient as Redis } from './redis';
import type { EmailLogRepository, SendOutcome } from './email-log/repository';
import { batchedGet, defineScript, ownKey } from './redis';

/** How long we remember that an email was handed off, so no retry sends it a second time. */
const HANDED_OFF_TTL_SECONDS = 7 * 24 * 3600;
/** Staged outcomes a flush reads (HSCAN COUNT) and writes at a time. */
const FLUSH_CHUNK = 500;

// Deletes the outbox entry only if it is still the version we wrote to the database.
const SETTLE_SCRIPT = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`;

// Deletes a hand-off mark only if it holds the caller's token.
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/**
 * Send outcomes on their way to the logs database. An email the SMTP server accepted is first
 * marked "handed off" in Redis (a small key with the provider's id and the time), and the worker
 * checks that mark before sending: no retry sends it again, and a retry after a crash writes its
 * entry from the mark and the job. Then the outcome is written to the database; when that write
 * fails, it is staged in Redis (the outbox hash), so a logs-database outage loses nothing: the
 * flusher writes what is staged once the database is back, and the job completes meanwhile.
 */
export interface Outbox {
  /** Stages an outcome for the flusher; returns the token to settle it with. */
  stage(outcome: SendOutcome): Promise<string>;
  settle(id: string, token: string): Promise<void>;
  /**
   * What earlier attempts of this email left, in one round trip: `sent` when one was accepted
   * by the SMTP server (with the provider's id when it gave one), `unknown` when one wrote its
   * final dot and never recorded an answer (its worker died, or the connection was lost before
   * the reply): whether that email left is unknown, so it must not be sent again blindly.
   */
  earlierAttempts(id: string): Promise<{ sent: { providerMessageId: string | null; sentAt: string | null } | null; unknown: boolean }>;
  /**
   * Marks the hand-off, immediately before the final dot of DATA: from here on the server may
   * deliver the email. False when another attempt holds the mark. The mark holds `token`, so a
   * mark that reached Redis twice (a command ioredis resent after reconnecting) is still
   * recognised as this attempt's own.
   */
  markHandOff(id: string, token: string): Promise<boolean>;
  /** The server answered the attempt with an error (or it never wrote the dot): a retry may send again. */
  releaseHandOff(id: string, token: string): Promise<void>;
  /** Writes an outcome (marking an accepted email first); false when the database write failed (it is staged). */
  write(logs: EmailLogRepository, outcome: SendOutcome): Promise<boolean>;
  /**
   * Writes staged outcomes, a chunk at a time, and stops at the first failed write; returns how
   * many were written and how many are left. `minAgeMs` leaves outcomes younger than that (by
   * their `sentAt`) to the jobs that are writing them.
   */
  flush(logs: EmailLogRepository, opts?: { minAgeMs?: number }): Promise<{ written: number; left: number }>;
  size(): Promise<number>;
}

/** The handed-off mark's value: `{p, t}` (provider id, sentAt); a plain provider id from before the time was kept. */
function parseMark(value: string): { providerMessageId: string | null; sentAt: string | null } {
  if (value.startsWith('{')) {
    const m = JSON.parse(value) as { p?: string | null; t?: string };
    return { providerMessageId: m.p ?? null, sentAt: m.t ?? null };
  }
  return { providerMessageId: value || null, sentAt: null };
}

export function createOutbox(redis: Redis, prefix: string): Outbox {
  const hashKey = ownKey(prefix, 'outbox');
  const markKey = (id: string) => ownKey(prefix, 'handed-off', id);
  const sendingKey = (id: string) => ownKey(prefix, 'handing-off', id);
  const settleScript = defineScript(redis, 'mailroomOutboxSettle', SETTLE_SCRIPT, 1);
  const releaseScript = defineScript(redis, 'mailroomHandOffRelease', RELEASE_SCRIPT, 1);
  // Read with the other look-ups a send starts (cache versions) in one MGET.
  const get = batchedGet(redis);

  const outbox: Outbox = {
    async stage(outcome) {
      const json = JSON.stringify(outcome);
      await redis.hset(hashKey, outcome.id, json);
      return json;
    },
    async settle(id, token) {
      await settleScript(hashKey, id, token);
    },
    async earlierAttempts(id) {
      const [sent, marked] = await Promise.all([get(markKey(id)), get(sendingKey(id))]);
      return { sent: sent == null ? null : parseMark(sent), unknown: marked != null };
    },
    async markHandOff(id, token) {
      if ((await redis.set(sendingKey(id), token, 'EX', HANDED_OFF_TTL_SECONDS, 'NX')) === 'OK') return true;
      // ioredis resends a command left unanswered when the connection dropped (a Redis restart):
      // the first SET may have gone through, so a key holding our own token is our own mark.
      return (await redis.get(sendingKey(id))) === token;
    },
    async releaseHandOff(id, token) {
      // Only this attempt's own mark: another attempt's mark stands for an email that may have left.
      await releaseScript(sendingKey(id), token);
    },

    async write(logs, outcome) {
      if (outcome.status === 'sent') {
        const mark = JSON.stringify({ p: outcome.providerMessageId, t: outcome.sentAt });
        await redis.set(markKey(outcome.id), mark, 'EX', HANDED_OFF_TTL_SECONDS);
      }
      try {
        await logs.recordOutcome(outcome);
        return true;
      } catch {
        // The database is away: staged for the flusher (a failure here throws, and the caller retries).
        await outbox.stage(outcome);
        return false;
      }
    },
    async flush(logs, opts = {}) {
      const minAgeMs = opts.minAgeMs ?? 0;
      let cursor = '0';
      let written = 0;
      let left = 0;
      // Once a write fails the database is away: the rest waits for the next pass.
      let failed = false;
      do {
        const [next, flat] = await redis.hscan(hashKey, cursor, 'COUNT', FLUSH_CHUNK);
        cursor = next;
        const due: Array<{ id: string; token: string; outcome: SendOutcome }> = [];
        for (let i = 0; i < flat.length; i += 2) {
          const token = flat[i + 1]!;
          const outcome = JSON.parse(token) as SendOutcome;
          // A young outcome is most likely being written by the job that staged it.
          if (failed || Date.now() - Date.parse(outcome.sentAt) < minAgeMs) left++;
          else due.push({ id: flat[i]!, token, outcome });
        }
        // Written together, so the repository batches them (one by one, a backlog of thousands
        // after an outage would take minutes).
        const ok = await Promise.all(
          due.map(({ id, token, outcome }) =>
            logs.recordOutcome(outcome).then(
              () => outbox.settle(id, token).then(() => true),
              () => false,
            ),
          ),
        );
        for (const w of ok) {
          if (w) written++;
          else {
            left++;
            failed = true;
          }
        }
      } while (cursor !== '0');
      return { written, left };
    },
    size() {
      return redis.hlen(hashKey);
    },
  };
  return outbox;
}
