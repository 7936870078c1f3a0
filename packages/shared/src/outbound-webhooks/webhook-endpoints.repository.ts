import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { newId } from '../ids';
import type { RedisClient as Redis } from '../redis';
import type { SecretBox } from '../secrets';
import { createVersionedCache, workspaceVersionKey } from '../versioned-cache';
import { WEBHOOK_MESSAGE_TYPES, type WebhookMessageType } from './messages';

/** How long a rotated-out secret keeps signing beside the new one. */
export const SECRET_OVERLAP_MS = 24 * 3600 * 1000;

/** An endpoint as stored (main database, `webhook_endpoints`); secrets sealed with SECRETS_KEY. */
export interface WebhookEndpointDoc {
  _id: string; // we_…
  workspaceId: string;
  url: string;
  /** Message types sent to it; null: all of them (types added later included). */
  events: WebhookMessageType[] | null;
  description: string | null;
  enabled: boolean;
  /** Why it was disabled: `admin`, `gone` (a 410), `failing` (the stretch of failures). */
  disabledReason: 'admin' | 'gone' | 'failing' | null;
  disabledAt: Date | null;
  sealedSecret: string;
  secretLast4: string;
  /** The secret before the last rotation, signing beside the new one until `previousSecretExpiresAt`. */
  sealedPreviousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  /** The first failed attempt since the last delivered message. */
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What the API shows: never the secret, only its last four characters. */
export interface PublicWebhookEndpoint {
  id: string;
  url: string;
  events: WebhookMessageType[];
  description: string | null;
  enabled: boolean;
  disabledReason: WebhookEndpointDoc['disabledReason'];
  disabledAt: string | null;
  secretLast4: string;
  previousSecretExpiresAt: string | null;
  failingSince: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What the dispatcher and the delivery worker need, secrets opened. */
export interface DeliveryEndpoint {
  id: string;
  workspaceId: string;
  url: string;
  events: ReadonlySet<WebhookMessageType> | null;
  enabled: boolean;
  /** The current secret first, then the previous one while it still signs. */
  secrets: Array<{ secret: string; until: number | null }>;
  failingSince: Date | null;
}

export interface WebhookEndpointPatch {
  url?: string;
  events?: WebhookMessageType[] | null;
  description?: string | null;
  enabled?: boolean;
}

export interface WebhookEndpointRepository {
  ensureIndexes(): Promise<void>;
  create(
    workspaceId: string,
    input: { url: string; events: WebhookMessageType[] | null; description: string | null },
  ): Promise<{ endpoint: WebhookEndpointDoc; secret: string }>;
  list(workspaceId: string): Promise<WebhookEndpointDoc[]>;
  get(workspaceId: string, id: string): Promise<WebhookEndpointDoc | null>;
  /** Enabling again clears the reason and the failing stretch. Null when there is no such endpoint. */
  update(workspaceId: string, id: string, patch: WebhookEndpointPatch): Promise<WebhookEndpointDoc | null>;
  remove(workspaceId: string, id: string): Promise<boolean>;
  /** A new secret; the old one signs beside it for `overlapMs`. */
  rotateSecret(workspaceId: string, id: string, overlapMs?: number): Promise<{ endpoint: WebhookEndpointDoc; secret: string } | null>;
  /** The workspace's endpoints with their secrets opened (the versioned cache loads this). */
  forDelivery(workspaceId: string): Promise<DeliveryEndpoint[]>;
  /** Disables an enabled endpoint; false when it was already disabled or is gone. */
  disable(id: string, reason: 'gone' | 'failing', at: Date): Promise<boolean>;
  /** Starts the failing stretch if none is running; returns its start and whether this call started it. */
  markFailing(id: string, at: Date): Promise<{ since: Date | null; started: boolean }>;
  /** Ends the failing stretch; true when there was one. */
  markHealthy(id: string): Promise<boolean>;
}

/** `whsec_` + base64 of 32 random bytes, as Standard Webhooks libraries expect. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export function toPublicEndpoint(d: WebhookEndpointDoc): PublicWebhookEndpoint {
  const iso = (x: Date | null) => (x ? x.toISOString() : null);
  return {
    id: d._id,
    url: d.url,
    events: d.events ?? [...WEBHOOK_MESSAGE_TYPES],
    description: d.description,
    enabled: d.enabled,
    disabledReason: d.disabledReason,
    disabledAt: iso(d.disabledAt),
    secretLast4: d.secretLast4,
    previousSecretExpiresAt: d.previousSecretExpiresAt && d.previousSecretExpiresAt > new Date() ? iso(d.previousSecretExpiresAt) : null,
    failingSince: iso(d.failingSince),
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

export function createWebhookEndpointRepository(db: Db, box: SecretBox): WebhookEndpointRepository {
  const col: Collection<WebhookEndpointDoc> = db.collection('webhook_endpoints');
  const sealed = (secret: string) => ({ sealedSecret: box.seal(secret), secretLast4: secret.slice(-4) });

  return {
    async ensureIndexes() {
      // list() and forDelivery(): a workspace's endpoints.
      await col.createIndex({ workspaceId: 1, _id: 1 }, { name: 'workspace_id' });
    },
    async create(workspaceId, input) {
      const now = new Date();
      const secret = newWebhookSecret();
      const endpoint: WebhookEndpointDoc = {
        _id: newId('we', now.getTime()),
        workspaceId,
        url: input.url,
        events: input.events,
        description: input.description,
        enabled: true,
        disabledReason: null,
        disabledAt: null,
        ...sealed(secret),
        sealedPreviousSecret: null,
        previousSecretExpiresAt: null,
        failingSince: null,
        createdAt: now,
        updatedAt: now,
      };
      await col.insertOne(endpoint);
      return { endpoint, secret };
    },
    list: (workspaceId) => col.find({ workspaceId }).sort({ _id: 1 }).toArray(),
    get: (workspaceId, id) => col.findOne({ _id: id, workspaceId }),
    async update(workspaceId, id, patch) {
      const set: Partial<WebhookEndpointDoc> = { updatedAt: new Date() };
      if (patch.url !== undefined) set.url = patch.url;
      if (patch.events !== undefined) set.events = patch.events;
      if (patch.description !== undefined) set.description = patch.description;
      if (patch.enabled === true) Object.assign(set, { enabled: true, disabledReason: null, disabledAt: null, failingSince: null });
      if (patch.enabled === false) Object.assign(set, { enabled: false, disabledReason: 'admin', disabledAt: new Date() });
      const r = await col.updateOne({ _id: id, workspaceId }, { $set: set });
      return r.matchedCount ? col.findOne({ _id: id, workspaceId }) : null;
    },
    async remove(workspaceId, id) {
      return (await col.deleteOne({ _id: id, workspaceId })).deletedCount > 0;
    },
    async rotateSecret(workspaceId, id, overlapMs = SECRET_OVERLAP_MS) {
      const current = await col.findOne({ _id: id, workspaceId });
      if (!current) return null;
      const secret = newWebhookSecret();
      const now = new Date();
      const set = {
        ...sealed(secret),
        sealedPreviousSecret: current.sealedSecret,
        previousSecretExpiresAt: new Date(now.getTime() + overlapMs),
        updatedAt: now,
      };
      // Guarded by the secret that was read, so two rotations at once cannot both keep "the previous" one.
      const r = await col.updateOne({ _id: id, workspaceId, sealedSecret: current.sealedSecret }, { $set: set });
      if (r.matchedCount !== 1) return null;
      return { endpoint: { ...current, ...set }, secret };
    },
    async forDelivery(workspaceId) {
      const docs = await col.find({ workspaceId }).toArray();
      return docs.map((d) => ({
        id: d._id,
        workspaceId: d.workspaceId,
        url: d.url,
        events: d.events ? new Set(d.events) : null,
        enabled: d.enabled,
        secrets: [
          { secret: box.open(d.sealedSecret), until: null },
          ...(d.sealedPreviousSecret && d.previousSecretExpiresAt
            ? [{ secret: box.open(d.sealedPreviousSecret), until: d.previousSecretExpiresAt.getTime() }]
            : []),
        ],
        failingSince: d.failingSince,
      }));
    },
    async disable(id, reason, at) {
      const r = await col.updateOne(
        { _id: id, enabled: true },
        { $set: { enabled: false, disabledReason: reason, disabledAt: at, updatedAt: at } },
      );
      return r.modifiedCount === 1;
    },
    async markFailing(id, at) {
      const r = await col.updateOne({ _id: id, failingSince: null }, { $set: { failingSince: at } });
      if (r.modifiedCount === 1) return { since: at, started: true };
      const d = await col.findOne({ _id: id }, { projection: { failingSince: 1 } });
      return { since: d?.failingSince ?? null, started: false };
    },
    async markHealthy(id) {
      const r = await col.updateOne({ _id: id, failingSince: { $ne: null } }, { $set: { failingSince: null } });
      return r.modifiedCount === 1;
    },
  };
}

/**
 * The endpoints of a workspace as the send and event paths look them up: kept in memory and
 * checked against a version counter in Redis (one GET, shared by the lookups in flight at once), so
 * a workspace without endpoints costs the hot path at most one Redis GET and no database read.
 * Every change calls `changed`.
 */
export interface WebhookEndpointDirectory {
  forWorkspace(workspaceId: string): Promise<DeliveryEndpoint[]>;
  changed(workspaceId: string): Promise<unknown>;
}

export function createWebhookEndpointDirectory(repo: WebhookEndpointRepository, redis: Redis, prefix: string): WebhookEndpointDirectory {
  const cache = createVersionedCache(
    redis,
    (ws) => workspaceVersionKey(prefix, 'webhook-endpoints', ws),
    (ws) => repo.forDelivery(ws),
  );
  // Lookups for one workspace while one is in flight share it: the ~50 outcomes a batch writes
  // together cost one GET instead of 50. A lookup that joins may miss a change made during that
  // one round trip, a change as concurrent with its status change as one made a moment later.
  const inflight = new Map<string, Promise<DeliveryEndpoint[]>>();
  return {
    forWorkspace(ws) {
      let pending = inflight.get(ws);
      if (!pending) {
        pending = cache.get(ws).finally(() => inflight.delete(ws));
        inflight.set(ws, pending);
      }
      return pending;
    },
    changed: (ws) => cache.bump(ws),
  };
}
