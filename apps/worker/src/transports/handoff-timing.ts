import type { Histogram } from 'prom-client';
import type { ResolvedTransport, TransportRegistry } from './transport-registry';

/**
 * The registry whose transports time each `sendMail` (the SMTP hand-off) into `histogram`
 * (`mailroom_smtp_handoff_seconds`). One wrapper per transport, made on its first use.
 */
export function withHandoffTiming(registry: TransportRegistry, histogram: Histogram): TransportRegistry {
  const timed = new WeakMap<ResolvedTransport, ResolvedTransport>();
  const wrap = (t: ResolvedTransport): ResolvedTransport => {
    const transporter = Object.create(t.transporter) as ResolvedTransport['transporter'];
    transporter.sendMail = ((mail: Parameters<ResolvedTransport['transporter']['sendMail']>[0]) => {
      const end = histogram.startTimer();
      return t.transporter.sendMail(mail).finally(() => end());
    }) as ResolvedTransport['transporter']['sendMail'];
    return { ...t, transporter };
  };
  return {
    async resolve(workspaceId) {
      const t = await registry.resolve(workspaceId);
      let w = timed.get(t);
      if (!w) timed.set(t, (w = wrap(t)));
      return w;
    },
    close: () => registry.close(),
  };
}
