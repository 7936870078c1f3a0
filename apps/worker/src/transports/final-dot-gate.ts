import { Transform, type TransformCallback, type Writable } from 'node:stream';
import type { Transporter } from 'nodemailer';

/**
 * The option of `sendMail` that holds a {@link BeforeFinalDot} hook (nodemailer keeps unknown
 * options on `mail.data`, where the stream plugin below finds it).
 */
export const BEFORE_FINAL_DOT = 'mailroomBeforeFinalDot';

/**
 * Runs once the SMTP server has accepted the envelope (MAIL FROM, RCPT TO, DATA's 354) and the
 * whole message body has been handed to the connection, and before the final `.` of DATA is
 * written. A rejection stops the message there: no final dot, so no compliant server delivers it.
 */
export type BeforeFinalDot = () => Promise<void>;

/** The gate passes the body on in blocks of this size (the last one smaller). */
const BLOCK_BYTES = 64 * 1024;

/**
 * The last stage of the message stream: passes the message through, and holds back its end
 * until the hook resolved. nodemailer's SMTPConnection pipes the message into its DataStream,
 * which writes `\r\n.\r\n` when (and only when) the message stream ends, so the final dot waits
 * for the hook.
 *
 * It also joins the message's small chunks (nodemailer's MIME encoder hands on a header block,
 * each encoded part and each boundary as chunks of their own) into blocks of up to 64 KiB: each
 * chunk the connection takes is one write to its socket, tens of µs of system time on loopback
 * (a small email's body went out as four writes; now it is one, then the dot).
 *
 * The message stream is built and starts filling before the envelope is sent, so `_flush` may
 * run long before DATA: the rest of the body is passed on once the connection has piped the
 * stream (after DATA's 354), and the hook runs once the connection has taken every byte of it.
 */
class FinalDotGate extends Transform {
  private piped = false;
  private onPiped: (() => void) | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(private readonly hook: BeforeFinalDot) {
    super();
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    const out = super.pipe(destination as unknown as Writable, options) as unknown as T;
    this.piped = true;
    this.onPiped?.();
    return out;
  }

  private release(): void {
    if (this.heldBytes === 0) return;
    this.push(this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes));
    this.held = [];
    this.heldBytes = 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= BLOCK_BYTES) this.release();
    done();
  }

  override _flush(done: TransformCallback): void {
    const run = () => {
      if (this.destroyed) return;
      this.hook().then(
        () => done(),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    };
    // The rest of the body, then: every byte taken by the connection (written to its socket), then the hook.
    const whenPiped = () => {
      this.release();
      if (this.readableLength === 0) return run();
      const onData = () => {
        if (this.readableLength > 0) return;
        this.off('data', onData);
        run();
      };
      this.on('data', onData);
    };
    if (this.piped) whenPiped();
    else this.onPiped = whenPiped;
  }
}

/**
 * Installs the final-dot gate on a transporter: every `sendMail` whose options carry a
 * {@link BEFORE_FINAL_DOT} hook gets its message stream ended through it. It must stay the last
 * stage: nodemailer adds DKIM signing as a later stage, so a transporter with DKIM would sign
 * after the gate (not used here).
 */
export function installFinalDotGate(transporter: Transporter): void {
  transporter.use('stream', (mail, done) => {
    const hook = (mail.data as Record<string, unknown>)[BEFORE_FINAL_DOT];
    if (typeof hook === 'function') {
      mail.message.processFunc((input) => {
        const gate = new FinalDotGate(hook as BeforeFinalDot);
        input.once('error', (err) => gate.destroy(err));
        return input.pipe(gate);
      });
    }
    done();
  });
}
