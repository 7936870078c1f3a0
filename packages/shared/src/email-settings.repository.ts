import type { Collection, Db } from 'mongodb';
import type { EmailSettingsInput } from './schemas';
import type { SecretBox } from './secrets';

/** What is stored: connection fields in clear, secrets sealed with SECRETS_KEY. */
interface EmailSettingsDoc {
  _id: string; // workspace id
  kind: 'smtp' | 'google' | 'outlook';
  host?: string;
  port?: number;
  secure?: boolean;
  user?: string;
  clientId?: string;
  from: string;
  sealedSecrets: string;
  updatedAt: Date;
  version: number;
}

interface Secrets {
  pass?: string;
  clientSecret?: string;
  refreshToken?: string;
}

/** Settings as the worker needs them to build a transport (secrets opened). */
export type CustomTransportSettings =
  | { kind: 'smtp'; host: string; port: number; secure: boolean; user?: string; pass?: string; from: string; version: number }
  | {
      kind: 'google' | 'outlook';
      user: string;
      clientId: string;
      clientSecret: string;
      refreshToken: string;
      from: string;
      version: number;
    };

/** Settings as the API shows them: never a secret, only whether one is set. */
export type PublicEmailSettings =
  | {
      kind: 'smtp';
      host: string;
      port: number;
      secure: boolean;
      user: string | null;
      from: string;
      hasPassword: boolean;
      updatedAt: string;
    }
  | {
      kind: 'google' | 'outlook';
      user: string;
      clientId: string;
      from: string;
      hasClientSecret: true;
      hasRefreshToken: true;
      updatedAt: string;
    };

export interface EmailSettingsRepository {
  get(workspaceId: string): Promise<CustomTransportSettings | null>;
  getPublic(workspaceId: string): Promise<PublicEmailSettings | null>;
  put(workspaceId: string, input: EmailSettingsInput): Promise<PublicEmailSettings>;
  remove(workspaceId: string): Promise<boolean>;
}

export function createEmailSettingsRepository(db: Db, box: SecretBox): EmailSettingsRepository {
  const settings: Collection<EmailSettingsDoc> = db.collection('email_settings');

  const toPublic = (d: EmailSettingsDoc): PublicEmailSettings => {
    const secrets = JSON.parse(box.open(d.sealedSecrets)) as Secrets;
    if (d.kind === 'smtp') {
      return {
        kind: 'smtp',
        host: d.host!,
        port: d.port!,
        secure: d.secure ?? false,
        user: d.user ?? null,
        from: d.from,
        hasPassword: Boolean(secrets.pass),
        updatedAt: d.updatedAt.toISOString(),
      };
    }
    return {
      kind: d.kind,
      user: d.user!,
      clientId: d.clientId!,
      from: d.from,
      hasClientSecret: true,
      hasRefreshToken: true,
      updatedAt: d.updatedAt.toISOString(),
    };
  };

  return {
    async get(workspaceId) {
      const d = await settings.findOne({ _id: workspaceId });
      if (!d) return null;
      const s = JSON.parse(box.open(d.sealedSecrets)) as Secrets;
      if (d.kind === 'smtp') {
        return {
          kind: 'smtp',
          host: d.host!,
          port: d.port!,
          secure: d.secure ?? false,
          user: d.user,
          pass: s.pass,
          from: d.from,
          version: d.version,
        };
      }
      return {
        kind: d.kind,
        user: d.user!,
        clientId: d.clientId!,
        clientSecret: s.clientSecret!,
        refreshToken: s.refreshToken!,
        from: d.from,
        version: d.version,
      };
    },
    async getPublic(workspaceId) {
      const d = await settings.findOne({ _id: workspaceId });
      return d ? toPublic(d) : null;
    },
    async put(workspaceId, input) {
      const now = new Date();
      const current = await settings.findOne({ _id: workspaceId });
      const base = { updatedAt: now, version: (current?.version ?? 0) + 1, from: input.from };
      let doc: EmailSettingsDoc;
      if (input.kind === 'smtp') {
        // Keep a stored password when the same account is saved again without one.
        const previous =
          current && current.kind === 'smtp' && current.user === input.user
            ? (JSON.parse(box.open(current.sealedSecrets)) as Secrets).pass
            : undefined;
        const pass = input.pass ?? previous;
        doc = {
          _id: workspaceId,
          kind: 'smtp',
          host: input.host,
          port: input.port,
          secure: input.secure,
          ...(input.user ? { user: input.user } : {}),
          sealedSecrets: box.seal(JSON.stringify(pass ? { pass } : {})),
          ...base,
        };
      } else {
        doc = {
          _id: workspaceId,
          kind: input.kind,
          user: input.user,
          clientId: input.clientId,
          sealedSecrets: box.seal(JSON.stringify({ clientSecret: input.clientSecret, refreshToken: input.refreshToken })),
          ...base,
        };
      }
      await settings.replaceOne({ _id: workspaceId }, doc, { upsert: true });
      return toPublic(doc);
    },
    async remove(workspaceId) {
      const r = await settings.deleteOne({ _id: workspaceId });
      return r.deletedCount > 0;
    },
  };
}
