import type { Collection, Db } from 'mongodb';
import { newId, randomSecret } from './ids';
import { sha256Hex } from './secrets';

export type KeyRole = 'send' | 'admin';

export interface WorkspaceDoc {
  _id: string;
  name: string;
  createdAt: Date;
}

export interface ApiKeyDoc {
  _id: string;
  workspaceId: string;
  role: KeyRole;
  /** SHA-256 of the key: the key itself is shown once and never stored. */
  hash: string;
  /** First characters, to recognise a key in lists and the activity log. */
  hint: string;
  createdAt: Date;
  revokedAt?: Date;
}

export interface AuthenticatedKey {
  keyId: string;
  workspaceId: string;
  role: KeyRole;
}

export interface WorkspaceRepository {
  ensureIndexes(): Promise<void>;
  /** Creates a workspace with one send and one admin key; returns the plain keys once. */
  create(name: string): Promise<{ workspace: WorkspaceDoc; keys: Record<KeyRole, string>; keyIds: Record<KeyRole, string> }>;
  findById(id: string): Promise<WorkspaceDoc | null>;
  /** Looks a presented key up by its hash; revoked keys are not found. */
  authenticate(plainKey: string): Promise<AuthenticatedKey | null>;
}

export function createWorkspaceRepository(db: Db): WorkspaceRepository {
  const workspaces: Collection<WorkspaceDoc> = db.collection('workspaces');
  const keys: Collection<ApiKeyDoc> = db.collection('api_keys');
  return {
    async ensureIndexes() {
      // authenticate(): every API request looks its key up by hash.
      await keys.createIndex({ hash: 1 }, { unique: true, name: 'hash_unique' });
      // Listing a workspace's keys.
      await keys.createIndex({ workspaceId: 1, createdAt: -1 }, { name: 'workspace_created' });
    },
    async create(name) {
      const now = new Date();
      const workspace: WorkspaceDoc = { _id: newId('ws'), name, createdAt: now };
      await workspaces.insertOne(workspace);
      const plain: Record<KeyRole, string> = { send: `mr_send_${randomSecret(24)}`, admin: `mr_admin_${randomSecret(24)}` };
      const docs: ApiKeyDoc[] = (['send', 'admin'] as const).map((role) => ({
        _id: newId('key'),
        workspaceId: workspace._id,
        role,
        hash: sha256Hex(plain[role]),
        hint: plain[role].slice(0, 12),
        createdAt: now,
      }));
      await keys.insertMany(docs);
      return { workspace, keys: plain, keyIds: { send: docs[0]!._id, admin: docs[1]!._id } };
    },
    findById(id) {
      return workspaces.findOne({ _id: id });
    },
    async authenticate(plainKey) {
      const doc = await keys.findOne({ hash: sha256Hex(plainKey) });
      if (!doc || doc.revokedAt) return null;
      return { keyId: doc._id, workspaceId: doc.workspaceId, role: doc.role };
    },
  };
}
