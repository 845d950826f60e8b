/**
 * The chaos history checker and report on small hand-made histories: one
 * known violation per kind, the boundary cases (a resolution just within and
 * just past the failure timeout, a double yes across a partition that is no
 * violation, and the same one outliving the heal), a clean history, the
 * recorder and the file format, and the rendered table. Pure: no I/O.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReport, checkHistory, defaultWindows, deriveConnectivity, HistoryFormatError, HistoryRecorder, parseHistory, renderReport } from '../src/chaos/index.js';
import type { CheckerOptions, History, HistoryEvent, Sample } from '../src/chaos/index.js';

const P = '<a.c1.1>';
const Q = '<b.c1.1>';
const FT = 3000;
let nextId = 1;

function history(events: readonly HistoryEvent[], samples?: readonly Sample[]): History {
  return parseHistory({ version: 1, meta: { nodes: ['a', 'b', 'c'], brokers: 1, failureTimeout: FT, startedAt: 0, endedAt: 20_000, seed: 7 }, events, ...(samples ? { samples } : {}) });
}
const register = (process: string, pid: string, name: string, invokeAt: number, completeAt: number | null, result: 'yes' | 'no' | 'error' = 'yes'): HistoryEvent =>
  ({ kind: 'op', id: nextId++, op: 'register', process, name, pid, invokeAt, completeAt, result }) as HistoryEvent;
const whereis = (process: string, name: string, invokeAt: number, result: string | null, final = false): HistoryEvent =>
  ({ kind: 'op', id: nextId++, op: 'whereis', process, name, invokeAt, completeAt: invokeAt + 2, result, ...(final ? { final: true } : {}) }) as HistoryEvent;
const unregister = (process: string, name: string, invokeAt: number, completeAt: number): HistoryEvent =>
  ({ kind: 'op', id: nextId++, op: 'unregister', process, name, invokeAt, completeAt, result: 'ok' }) as HistoryEvent;
const death = (pid: string, at: number, reason?: string): HistoryEvent => ({ kind: 'death', pid, at, ...(reason ? { reason } : {}) });
const fault = (kind: 'cut' | 'heal' | 'kill-node' | 'blackhole', target: string, at: number): HistoryEvent => ({ kind: 'fault', fault: kind, target, at });
const finals = (name: string, at: number, result: string | null): HistoryEvent[] => ['a', 'b', 'c'].map((node) => whereis(node, name, at, result, true));

function kinds(h: History, options: CheckerOptions = {}): Record<string, number> {
  const result = checkHistory(h, options);
  return Object.fromEntries(Object.entries(result.byKind).filter(([, n]) => n > 0));
}

describe('chaos checker', () => {
  it('finds nothing in a clean history', () => {
    const h = history([
      register('a', P, 'x', 100, 110),
      whereis('b', 'x', 200, P),
      whereis('c', 'x', 200, P),
      unregister('b', 'x', 300, 310),
      whereis('a', 'x', 400, null),
      register('b', Q, 'x', 500, 520),
      whereis('a', 'x', 600, Q),
      death(Q, 1000, 'normal'),
      // A read invoked before the death may still see the old pid; so may one within the failure timeout.
      whereis('c', 'x', 999, Q),
      whereis('a', 'x', 1200, Q),
      register('a', P, 'y', 100, 130),
      ...finals('x', 9000, null),
      ...finals('y', 9000, P),
    ]);
    const result = checkHistory(h);
    assert.deepEqual(result.violations, []);
    assert.equal(result.ok, true);
    assert.deepEqual(result.checked, { holds: 3, openHolds: 1, uncheckedHolds: 0, reads: 6, finalReads: 6 });
  });

  it('double_grant: two yes for one name while their nodes could reach each other', () => {
    const h = history([register('a', P, 'x', 100, 110), register('b', Q, 'x', 200, 210), death(P, 900), death(Q, 1000)]);
    const result = checkHistory(h);
    assert.deepEqual(kinds(h), { double_grant: 1 });
    assert.deepEqual(result.violations[0]!.window, { from: 210, to: 900 });
    assert.deepEqual(result.violations[0]!.pids, [P, Q]);
  });

  it('a double yes across a partition is no violation while it lasts and for settle after the heal', () => {
    const events = (loserDiesAt: number): HistoryEvent[] => [
      register('a', P, 'x', 10, 20),
      fault('cut', 'a', 50),
      register('b', Q, 'x', 4000, 4010),
      fault('heal', 'a', 6000),
      death(Q, loserDiesAt, '{name_conflict,x,<a.c1.1>}'),
      ...finals('x', 12_000, P),
    ];
    assert.deepEqual(kinds(history(events(7999)), { settle: 2000 }), {});
    // The loser outlives heal + settle by 500 ms: a double grant over [8000, 8500).
    const late = checkHistory(history(events(8500)), { settle: 2000 });
    assert.deepEqual(late.byKind, { double_grant: 1, lost_holder: 0, stale_resolution: 0, lost_registration: 0 });
    assert.deepEqual(late.violations[0]!.window, { from: 8000, to: 8500 });
  });

  it('a grant racing an unregister of the name is not certain, so no double grant', () => {
    const h = history([register('a', P, 'x', 100, 110), unregister('c', 'x', 105, 120), register('b', Q, 'x', 130, 140), ...finals('x', 9000, Q)]);
    assert.deepEqual(kinds(h), {});
  });

  it('lost_holder: a yes never ended that the final reads do not show', () => {
    const h = history([register('a', P, 'x', 100, 110), whereis('b', 'x', 200, P), ...finals('x', 9000, null)]);
    const result = checkHistory(h);
    assert.deepEqual(kinds(h), { lost_holder: 1 });
    assert.equal(result.violations[0]!.count, 3);
    // Told of its loss (it died): no violation.
    assert.deepEqual(kinds(history([register('a', P, 'x', 100, 110), death(P, 5000, '{name_conflict}'), ...finals('x', 9000, null)])), {});
    // Its node killed: no violation either (its pids died with it).
    assert.deepEqual(kinds(history([register('a', P, 'x', 100, 110), fault('kill-node', 'a', 5000), ...finals('x', 9000, null)])), {});
    // No final reads: unchecked, not a violation.
    assert.equal(checkHistory(history([register('a', P, 'x', 100, 110)])).checked.uncheckedHolds, 1);
  });

  it('stale_resolution: just within and just past the failure timeout after the death', () => {
    const base = [register('a', P, 'x', 100, 110), death(P, 1000)];
    assert.deepEqual(kinds(history([...base, whereis('b', 'x', 1000 + FT, P)])), {});
    const past = checkHistory(history([...base, whereis('b', 'x', 1001 + FT, P), whereis('b', 'x', 2000 + FT, P)]));
    assert.deepEqual(past.byKind.stale_resolution, 1);
    assert.equal(past.violations[0]!.count, 2);
    // The slack widens the bound.
    assert.deepEqual(kinds(history([...base, whereis('b', 'x', 1001 + FT, P)]), { staleSlack: 1 }), {});
  });

  it('stale_resolution: a killed node\'s names resolve on another node past the failure timeout', () => {
    const base = [register('a', P, 'x', 100, 110), fault('kill-node', 'a', 1000)];
    assert.deepEqual(kinds(history([...base, whereis('b', 'x', 3900, P)])), {});
    assert.deepEqual(kinds(history([...base, whereis('b', 'x', 4100, P)])), { stale_resolution: 1 });
  });

  it('lost_registration: a read in touch with the live holder does not resolve the name', () => {
    assert.deepEqual(kinds(history([register('a', P, 'x', 100, 110), whereis('b', 'x', 200, null), death(P, 900)])), { lost_registration: 1 });
    // Another pid is as wrong as none.
    assert.deepEqual(kinds(history([register('a', P, 'x', 100, 110), whereis('a', 'x', 200, Q), death(P, 900)])), { lost_registration: 1 });
    // A read that began before the yes came back may miss it.
    assert.deepEqual(kinds(history([register('a', P, 'x', 100, 110), whereis('b', 'x', 105, null), death(P, 900)])), {});
    // The reader was cut off (its own link blackholed): excused.
    assert.deepEqual(kinds(history([register('a', P, 'x', 100, 110), fault('blackhole', 'b', 150), whereis('b', 'x', 200, null), death(P, 900)])), {});
    // Back in touch after heal + settle, it must resolve the name again.
    const healed = [register('a', P, 'x', 100, 110), fault('cut', 'b', 150), fault('heal', 'b', 1000), whereis('b', 'x', 1000 + 9 * FT + 1, null), death(P, 40_000)];
    assert.deepEqual(kinds(history(healed)), { lost_registration: 1 });
  });

  it('derives connectivity: cut until heal + settle, down from a kill to its restart', () => {
    const h = history([
      fault('cut', 'a', 100),
      fault('heal', 'all', 1000),
      fault('kill-node', 'b', 2000),
      { kind: 'node', event: 'restart', node: 'b', at: 2500, creation: 'c2' },
    ]);
    const c = deriveConnectivity(h, { settle: 100, joinGrace: 50 });
    assert.equal(c.connected('a', 'c', 99), true);
    assert.equal(c.connected('a', 'c', 100), false);
    assert.equal(c.connected('a', 'c', 1099), false);
    assert.equal(c.connected('a', 'c', 1100), true);
    assert.equal(c.connected('a', 'a', 500), true);
    assert.equal(c.connected('b', 'c', 2549), false);
    assert.equal(c.connected('b', 'c', 2550), true);
    assert.deepEqual(c.downOf('b'), [{ from: 2000, to: 2500 }]);
  });

  it('derives the default windows from the timings: settle = ft + 2 heartbeats + 1000 ms after the reconnect', () => {
    // FT 3000, heartbeat 1000 (default), AMQP heartbeat 5 s (default): settle 6000, amqpDetect 15 000, reconnectBound 21 000.
    assert.deepEqual(defaultWindows(history([]).meta), { settle: 6000, joinGrace: 0, delayImpairsFrom: 1500, amqpDetect: 15_000, reconnectBound: 21_000 });
    const h = history([
      fault('cut', 'a', 100),
      fault('heal', 'a', 1000),
      { kind: 'node', event: 'reconnected', node: 'a', at: 1400 },
      fault('blackhole', 'b', 100),
      fault('heal', 'b', 1000),
      { kind: 'fault', fault: 'broker-kill', target: 'broker0', at: 10_000, affects: ['c'] },
      { kind: 'node', event: 'reconnected', node: 'c', at: 10_300, broker: 1 },
      { kind: 'fault', fault: 'broker-restart', target: 'broker0', at: 14_000 },
    ]);
    const c = deriveConnectivity(h);
    // The cut: reconnect + settle.
    assert.equal(c.impaired('a', 7399), true);
    assert.equal(c.impaired('a', 7400), false);
    // The blackhole, no reconnect seen: heal + amqpDetect + settle.
    assert.equal(c.impaired('b', 21_999), true);
    assert.equal(c.impaired('b', 22_000), false);
    // The broker kill: failed over at 10 300, so until 16 300 (before the broker's restart + settle).
    assert.equal(c.impaired('c', 16_299), true);
    assert.equal(c.impaired('c', 16_300), false);
    assert.equal(checkHistory(h).options.settle, 6000);
  });

  it('reports the impaired share per node and reconnections by cause', () => {
    const h = history([
      fault('cut', 'a', 0),
      fault('heal', 'a', 1000),
      { kind: 'node', event: 'reconnected', node: 'a', at: 1000, broker: 0 },
      { kind: 'fault', fault: 'broker-kill', target: 'broker0', at: 10_000, affects: ['b', 'c'] },
      { kind: 'node', event: 'reconnected', node: 'b', at: 10_200, broker: 1 },
      { kind: 'fault', fault: 'broker-restart', target: 'broker0', at: 12_000 },
      { kind: 'node', event: 'reconnected', node: 'c', at: 12_500, broker: 0 },
    ]);
    const report = buildReport(h);
    assert.deepEqual(report.impaired.map((i) => [i.node, i.ms]), [['a', 7000], ['b', 6200], ['c', 8000]]); // c: the broker's restart (12 000) came before its reconnect: + settle
    assert.equal(report.impaired[0]!.share, 7000 / 20_000);
    assert.deepEqual(
      { ...report.reconnections, perBrokerKill: undefined },
      { total: 3, brokerKill: 2, failover: 1, sameBroker: 1, unknownBroker: 0, link: 1, other: 0, perBrokerKill: undefined },
    );
    assert.deepEqual(report.reconnections.perBrokerKill, [{ broker: 'broker0', at: 10_000, affected: 2, failedOverBeforeRestart: 1 }]);
    assert.match(renderReport(report), /to another broker \(failover\) \| 1 \|/);
  });
});

describe('chaos history format and recorder', () => {
  it('rejects a malformed history by field', () => {
    assert.throws(() => parseHistory({ version: 2 }), HistoryFormatError);
    assert.throws(
      () => parseHistory({ version: 1, meta: { nodes: ['a'], failureTimeout: 1, startedAt: 0, endedAt: 1 }, events: [{ kind: 'op', id: 1, op: 'register', process: 'a', name: 'x', invokeAt: 0, completeAt: 1, pid: 'nope', result: 'yes' }] }),
      /events\[0\]\.pid/,
    );
  });

  it('records invocations and completions; open operations end indeterminate', () => {
    let t = 0;
    const recorder = new HistoryRecorder({ now: () => (t += 10) });
    const op = recorder.invoke('register', { process: 'a', name: 'x', pid: P });
    const lost = recorder.invoke('whereis', { process: 'b', name: 'x' });
    op.complete('yes');
    op.complete('no');
    recorder.death(P, 'normal');
    const h = parseHistory(JSON.parse(JSON.stringify(recorder.history({ nodes: ['a', 'b'], failureTimeout: FT, startedAt: 0 }))));
    assert.deepEqual(h.events.map((e) => (e.kind === 'op' ? [e.op, e.invokeAt, e.completeAt, e.result] : [e.kind])), [
      ['register', 10, 30, 'yes'],
      ['whereis', 20, null, 'error'],
      ['death'],
    ]);
    assert.equal(lost.id, 2);
  });
});

describe('chaos report', () => {
  it('counts operations, faults and violations, register latency and re-convergence', () => {
    const agreeing = (at: number): Sample => ({ at, endAt: at + 5, views: { a: { x: P }, b: { x: P }, c: { x: P } } });
    const h = history(
      [
        register('a', P, 'x', 100, 110),
        register('b', Q, 'x', 120, 160, 'no'),
        fault('cut', 'c', 1000),
        fault('heal', 'c', 2000),
        whereis('c', 'x', 2100, P),
        ...finals('x', 9000, P),
      ],
      [{ at: 2200, endAt: 2205, views: { a: { x: P }, b: { x: P }, c: {} } }, agreeing(2700), agreeing(3200)],
    );
    const report = buildReport(h, { checker: { settle: 500 } });
    assert.deepEqual(report.operations.register, { yes: 1, no: 1 });
    assert.deepEqual(report.operations.whereis, { found: 4 });
    assert.deepEqual(report.faults, { cut: 1, heal: 1 });
    assert.equal(report.violationCount, 0);
    assert.deepEqual(report.registerLatency.all, { count: 2, p50: 10, p99: 40, max: 40 });
    assert.deepEqual(report.reconvergence.cut, { count: 1, p50: 700, p99: 700, max: 700, recoveries: 1, notConverged: 0 });
    const text = renderReport(report);
    assert.match(text, /\| register \| 2 \| yes 1 · no 1 \|/);
    assert.match(text, /\| double_grant \| 0 \|/);
    assert.match(text, /\| cut \| 1 \| 1 \| 700 \| 700 \| 700 \|/);
  });
});
