/**
 * Misbehaving SMTP endpoints for error tests (silent, resetting, closed), beside the SMTP sink in
 * infra/dev/smtp-sink.ts, which re-exports them.
 */
import net from 'node:net';

/** A raw TCP server whose connections get `onSocket`; close() destroys every open socket. */
async function startRawServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts TCP connections and never sends a greeting (client sees a greeting timeout). */
export function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  return startRawServer(() => undefined);
}

/** Accepts TCP connections and resets them at once (client sees ECONNRESET). */
export function startResettingServer(): Promise<{ port: number; close(): Promise<void> }> {
  return startRawServer((socket) => {
    socket.resetAndDestroy();
  });
}

/** A port nothing listens on: binds a server, notes the port, closes it again. */
export async function findClosedPort(): Promise<number> {
  const server = await startRawServer(() => undefined);
  await server.close();
  return server.port;
}
