/**
 * The short chaos run CI does: 3 roster node processes over a private
 * 3-broker cluster, each given every broker (its preferred one first,
 * `rotatedUrls`) through its own fault link (one proxy per broker), so a
 * broker kill makes its nodes fail over to another broker; 1.5 minutes of
 * faults (SIGKILL and restart of nodes, broker kills and restarts, cuts,
 * blackholes, delays) under register / unregister / whereis / call traffic,
 * then the history checker. Any violation fails it, with the report and a
 * history excerpt of each violation in the message. Seeded by
 * `ROSTER_CHAOS_SEED` (default: from the clock, printed).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { excerpt, runChaos } from '@roster/testkit';

const seed = Number(process.env['ROSTER_CHAOS_SEED'] ?? Date.now() % 2_147_483_647);

it(`a 1.5-minute chaos run over 3 nodes and 3 brokers has no violation (seed ${seed})`, { timeout: 8 * 60_000 }, async () => {
  const run = await runChaos({ minutes: 1.5, nodes: 3, brokers: 3, seed });
  const details = run.check.violations
    .slice(0, 5)
    .map((violation) => [`${violation.kind}: ${violation.message}`, ...excerpt(run.history, violation).map((event) => `  ${JSON.stringify(event)}`)].join('\n'))
    .join('\n');
  assert.equal(run.check.violations.length, 0, `${run.text}\n${details}`);
  // The run did something: faults were injected and names were granted and checked.
  assert.ok(Object.values(run.report.faults).reduce((sum, n) => sum + (n ?? 0), 0) >= 4, 'the nemesis injected faults');
  assert.ok(run.check.checked.holds >= 20, 'registrations were granted');
  assert.ok(run.check.checked.finalReads === 3 * 10, 'every node read every name at the end');
  // The failover path: a broker kill that took nodes down had some of them back on another broker.
  const kills = run.report.reconnections.perBrokerKill.filter((kill) => kill.affected > 0);
  if (kills.length > 0) assert.ok(run.report.reconnections.failover >= 1, `no failover after ${kills.length} broker kill(s)\n${run.text}`);
});
