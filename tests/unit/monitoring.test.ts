import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createMetrics } from '@mailroom/shared';

const INFRA = path.join(__dirname, '../../infra');
const RULES = path.join(INFRA, 'prometheus/mailroom-alerts.yml');
const RULE_TESTS = path.join(INFRA, 'prometheus/mailroom-alerts.test.yml');
const DASHBOARD = path.join(INFRA, 'grafana/mailroom-dashboard.json');

/** promtool ships in Debian's `prometheus` package, which scripts/setup.sh installs. */
const promtool = (...args: string[]) => execFileSync('promtool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Every metric name the processes can expose (histograms with their series). */
function exposedNames(): Set<string> {
  const m = createMetrics({ outboxSize: async () => 0, queues: [], retentionLastRun: async () => 0 });
  const names = new Set<string>();
  for (const metric of m.registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name;
    names.add(name);
    for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

describe('monitoring files in infra/', () => {
  it('when promtool checks the alert rules, then they are valid', () => {
    expect(promtool('check', 'rules', RULES)).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('when promtool runs the rule tests, then every alert fires on its series and not otherwise', () => {
    expect(promtool('test', 'rules', RULE_TESTS)).toContain('SUCCESS');
  });

  it('when the dashboard and the rules name a mailroom metric, then a process exposes it, and every metric of the issue is there', () => {
    const names = exposedNames();
    for (const n of [
      'mailroom_emails_accepted_total',
      'mailroom_emails_sent_total',
      'mailroom_emails_send_failed_total',
      'mailroom_smtp_handoff_seconds',
      'mailroom_delivery_events_total',
      'mailroom_outbound_webhooks_total',
      'mailroom_outbox_pending',
      'mailroom_retention_removed_total',
      'mailroom_retention_last_run_timestamp_seconds',
      'mailroom_queue_jobs',
      'process_cpu_seconds_total',
    ]) {
      expect(names).toContain(n);
    }
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ type: string; targets?: Array<{ expr: string }> }> };
    const exprs = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...[...readFileSync(RULES, 'utf8').matchAll(/mailroom_[a-z_]+/g)].map((m) => m[0]),
    ];
    expect(dashboard.panels.filter((p) => p.type !== 'row').length).toBeGreaterThan(10);
    for (const expr of exprs) {
      for (const [used] of expr.matchAll(/\b(?:mailroom|process)_[a-z_]+/g))
        expect({ used, exposed: names.has(used) }).toEqual({ used, exposed: true });
    }
  });
});
