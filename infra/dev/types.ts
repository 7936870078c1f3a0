/**
 * Types shared by the dev/test server launchers (mongo.ts, ferretdb.ts). Kept in a file of
 * their own so that mongo.ts can import ferretdb.ts without an import cycle.
 */

export type MongoKind = 'external' | 'mongodb-memory-server' | 'ferretdb';

/** A MongoDB-compatible server for dev or tests. */
export interface RunningMongo {
  /** `mongodb://127.0.0.1:PORT/` (no database name). */
  uri: string;
  kind: MongoKind;
  /** TCP port on 127.0.0.1, when known. */
  port?: number;
  /** Stops the server for good and removes any temp data dir it created. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server but keeps its data; `start()` brings it back. Throws for 'external'. */
  kill(): Promise<void>;
  /** Starts a killed server again on the same port with the same data. Throws for 'external'. */
  start(): Promise<void>;
  /** `kill()` then `start()`. Throws for 'external'. */
  restart(): Promise<void>;
}
