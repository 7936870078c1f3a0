import type { Collection, Db } from 'mongodb';

/**
 * The per-workspace open/click tracking switch, kept as a `tracking` field on the workspace
 * document (main database). Absent means on: tracking is the default.
 */
export interface TrackingSettingsRepository {
  isEnabled(workspaceId: string): Promise<boolean>;
  setEnabled(workspaceId: string, enabled: boolean): Promise<void>;
}

export function createTrackingSettingsRepository(mainDb: Db): TrackingSettingsRepository {
  const workspaces: Collection<{ _id: string; tracking?: { enabled: boolean } }> = mainDb.collection('workspaces');
  return {
    async isEnabled(workspaceId) {
      // A by-_id read per send: the worker asks right before rendering, so a switch applies at once.
      const ws = await workspaces.findOne({ _id: workspaceId }, { projection: { tracking: 1 } });
      return ws?.tracking?.enabled !== false;
    },
    async setEnabled(workspaceId, enabled) {
      await workspaces.updateOne({ _id: workspaceId }, { $set: { tracking: { enabled } } });
    },
  };
}
