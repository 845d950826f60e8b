/**
 * The observer's pure parts, without I/O: histogram arithmetic, rates,
 * supervision trees, the view model (up/down history, names, patches,
 * cluster-wide supervision read off the names), the
 * route table, auth decisions, CSP and SSE formatting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalName, LatencyHistogram, Pid, type LatencySnapshot, type Name, type NodeSnapshot, type SupervisorInfo } from '@roster/core';
import { singletonId } from '@roster/supervision';
import {
  dropsOf,
  figuresOf,
  histogramDelta,
  mergeHistograms,
  quantileOf,
  ratePerSecond,
  supervisionTrees,
  View,
  HISTORY_ENTRIES,
} from '../src/internal/snapshot.js';
import { allowedHost, authorize, bearerOf, contentSecurityPolicy, cookieOf, inlineScripts, matchRoute, mimeOf, ROUTES, scriptHash, Sessions } from '../src/internal/http.js';
import { formatEvent } from '../src/internal/events.js';
import { nameShape, singletonNameKey } from '../src/internal/dsup.js';

const pid = (node: string, id: number): Pid => new (Pid as unknown as new (node: string, creation: string, id: number) => Pid)(node, 'c1', id);

function histogram(values: readonly number[]): LatencySnapshot {
  const h = new LatencyHistogram();
  for (const value of values) h.observe(value);
  return h.snapshot();
}

/** What a node's cluster layer reports, with `dropped` counts by reason. */
function clusterReport(dropped: Record<string, number> = {}): Record<string, unknown> {
  return { sent: 1, received: 1, dropped: { malformed: 0, bad_signature: 0, ...dropped }, peers: 2, role: 'member' };
}

/** What a node's globals registry reports. */
function globalsReport(fields: { registrations?: number; latency?: LatencySnapshot; drops?: Record<string, number> } = {}): Record<string, unknown> {
  const drops = { malformed: 0, forged: 0, ...fields.drops };
  return {
    kind: 'globals',
    dropped: Object.values(drops).reduce((sum, count) => sum + count, 0),
    drops,
    conflicts: 0,
    listenerErrors: 0,
    registrations: fields.registrations ?? 0,
    unregistrations: 0,
    registerLatency: fields.latency ?? histogram([]),
    names: 2,
    members: ['a', 'b'],
  };
}

function snapshot(
  node: string,
  at: number,
  fields: { messagesIn?: number; calls?: LatencySnapshot; supervisors?: SupervisorInfo[]; distribution?: Record<string, unknown>; registries?: Record<string, Record<string, unknown>> } = {},
): NodeSnapshot {
  return {
    ...(fields.distribution === undefined ? {} : { distribution: fields.distribution }),
    registries: fields.registries ?? {},
    node,
    at,
    processCount: 3,
    stats: { spawned: 3, exited: 0, messagesIn: fields.messagesIn ?? 0, messagesOut: 0, calls: 0, callsFailed: 0, callLatency: fields.calls ?? histogram([]) },
    mailboxMax: 0,
    longestMailboxes: [],
    memory: { rss: 1, heapUsed: 1, heapTotal: 1, external: 1 },
    eventLoopDelay: { mean: 0, p50: 0, p99: 0, max: 0 },
    supervisors: fields.supervisors ?? [],
    registered: [],
  } as unknown as NodeSnapshot;
}

test('histogramDelta subtracts bucket by bucket, and takes the new one whole after a restart', () => {
  const before = histogram([0.2, 3, 40]);
  const after = histogram([0.2, 3, 40, 3, 700, 20_000]);
  const delta = histogramDelta(before, after);
  assert.equal(delta.count, 3);
  assert.equal(delta.sum, 3 + 700 + 20_000);
  assert.deepEqual(delta.counts, after.counts.map((count, index) => count - before.counts[index]!));
  // A restarted node's counts went back: what it has now is all that is known.
  assert.deepEqual(histogramDelta(after, before), before);
  assert.deepEqual(histogramDelta(undefined, before), before);
});

test('quantileOf gives the bucket bound the rank falls in; mergeHistograms adds', () => {
  const values = [...Array.from({ length: 98 }, () => 0.3), 7, 7];
  const h = histogram(values);
  assert.equal(quantileOf(h, 0.5), 0.5);
  assert.equal(quantileOf(h, 0.98), 0.5);
  assert.equal(quantileOf(h, 0.99), 10);
  assert.equal(quantileOf(histogram([]), 0.99), undefined);
  assert.equal(quantileOf(histogram([99_999]), 0.5), 10_000, 'the +Inf bucket reports the last finite bound');
  const merged = mergeHistograms([histogram([1, 2]), histogram([3])])!;
  assert.equal(merged.count, 3);
  assert.equal(merged.sum, 6);
  assert.equal(mergeHistograms([]), undefined);
});

test('ratePerSecond is per second, and 0 across a restart or with no interval', () => {
  assert.equal(ratePerSecond(100, 350, 500), 500);
  assert.equal(ratePerSecond(undefined, 350, 500), 0);
  assert.equal(ratePerSecond(400, 10, 500), 0);
  assert.equal(ratePerSecond(1, 2, 0), 0);
});

test('supervisionTrees nests by child pid, keeps orphans as roots and survives a cycle', () => {
  const root: SupervisorInfo = {
    pid: pid('a', 1),
    name: 'root',
    strategy: 'one_for_one',
    restarts: 2,
    recentRestarts: [{ childId: 'w', at: 5, reason: 'boom' }],
    children: [
      { id: 'sub', pid: pid('a', 2), type: 'supervisor', restart: 'permanent' },
      { id: 'w', pid: pid('a', 3), type: 'worker', restart: 'permanent' },
    ],
  };
  const sub: SupervisorInfo = { pid: pid('a', 2), parent: pid('a', 1), strategy: 'rest_for_one', restarts: 0, recentRestarts: [], children: [{ id: 'x', type: 'worker', restart: 'transient' }] };
  const lone: SupervisorInfo = { pid: pid('a', 9), parent: pid('b', 1), strategy: 'one_for_all', restarts: 0, recentRestarts: [], children: [] };
  const trees = supervisionTrees([sub, root, lone]);
  assert.deepEqual(trees.map((tree) => tree.pid), [root.pid.key, lone.pid.key]);
  const nested = trees[0]!.children[0]!.tree!;
  assert.equal(nested.pid, sub.pid.key);
  assert.equal(nested.strategy, 'rest_for_one');
  assert.equal(nested.children[0]!.pid, undefined);
  assert.deepEqual(trees[0]!.recentRestarts, [{ childId: 'w', at: 5, reason: 'boom' }]);
  // Two supervisors naming each other as children: no root is found, nothing loops.
  const a: SupervisorInfo = { pid: pid('a', 20), strategy: 'one_for_one', restarts: 0, recentRestarts: [], children: [{ id: 'b', pid: pid('a', 21), type: 'supervisor', restart: 'permanent' }] };
  const b: SupervisorInfo = { pid: pid('a', 21), strategy: 'one_for_one', restarts: 0, recentRestarts: [], children: [{ id: 'a', pid: pid('a', 20), type: 'supervisor', restart: 'permanent' }] };
  assert.deepEqual(supervisionTrees([a, b]), []);
});

test('figuresOf: message rate and call latency over the interval between two snapshots', () => {
  const first = snapshot('n', 1000, { messagesIn: 10, calls: histogram([1, 1]) });
  const second = snapshot('n', 3000, { messagesIn: 110, calls: histogram([1, 1, 40, 40]) });
  const figures = figuresOf(first, second);
  assert.equal(figures.messageRate, 50);
  assert.equal(figures.callMean, 40);
  assert.equal(figures.callP99, 50);
  assert.equal(figuresOf(undefined, second).messageRate, 0);
  assert.equal(figuresOf(undefined, second).callMean, undefined);
});

test('View: up/down history per incarnation, figures kept after a loss, and patches hold only changes', () => {
  const view = new View('c', 'obs', undefined, 1000);
  view.nodeUp({ node: 'obs', creation: 'o1', role: 'observer' }, 1, true);
  view.nodeUp({ node: 'a', creation: 'a1' }, 2);
  view.nodeUp({ node: 'a', creation: 'a1' }, 3); // repeated: no new entry
  view.snapshot('a', snapshot('a', 4));
  let patch = view.takePatch();
  assert.deepEqual(patch.nodes?.map((node) => node.name).sort(), ['a', 'obs']);
  assert.deepEqual(patch.log?.map((entry) => entry.kind), ['nodeup']);
  assert.deepEqual(view.takePatch(), {});
  assert.equal(view.dirty, false);

  view.nodeDown({ node: 'a', creation: 'a1' }, 'timeout', 5);
  view.nodeDown({ node: 'a', creation: 'a1' }, 'timeout', 6); // already down
  view.snapshot('a', snapshot('a', 7)); // a late answer from a down node is ignored
  const down = view.node('a')!;
  assert.equal(down.status, 'down');
  assert.equal(down.downs, 1);
  assert.deepEqual(down.history.map((entry) => [entry.status, entry.reason]), [['up', undefined], ['down', 'timeout']]);
  assert.notEqual(down.figures, undefined, 'the last figures stay on show');
  assert.equal(view.snapshotOf('a')!.at, 4);
  // Back under a new incarnation: figures start over.
  view.nodeUp({ node: 'a', creation: 'a2' }, 8);
  assert.equal(view.node('a')!.figures, undefined);
  assert.equal(view.node('a')!.ups, 2);
  for (let n = 0; n < HISTORY_ENTRIES * 2; n++) {
    view.nodeDown({ node: 'a', creation: `a${n + 2}` }, 'leave', 10 + n);
    view.nodeUp({ node: 'a', creation: `a${n + 3}` }, 10 + n);
  }
  assert.equal(view.node('a')!.history.length, HISTORY_ENTRIES);
  // A stale nodedown (an older incarnation) changes nothing.
  view.takePatch();
  view.nodeDown({ node: 'a', creation: 'a1' }, 'timeout', 99);
  assert.equal(view.node('a')!.status, 'up');
  assert.equal(view.dirty, false);
});

test('View: names set and released; an older holder’s release leaves a newer holder; conflicts are counted per name', () => {
  const view = new View('c', 'obs', undefined, 1000);
  view.nameRegistered({ key: '"x"', name: 'x', owner: 'a', pid: '<a.1.1>', epoch: 'e1', since: 1 });
  view.nameRegistered({ key: '"x"', name: 'x', owner: 'b', pid: '<b.1.1>', epoch: 'e2', since: 2 });
  view.nameUnregistered('"x"', 'x', '<a.1.1>', 'killed', 3);
  assert.deepEqual(view.names().map((row) => row.owner), ['b']);
  view.conflict('"x"', 'x', 'conflict on x', 4);
  assert.equal(view.names()[0]!.conflicts, 1);
  assert.equal(view.conflicts, 1);
  let patch = view.takePatch();
  assert.deepEqual(patch.names?.set.map((row) => row.pid), ['<b.1.1>']);
  assert.equal(patch.conflicts, 1);
  view.nameUnregistered('"x"', 'x', '<b.1.1>', 'normal', 5);
  patch = view.takePatch();
  assert.deepEqual(patch.names, { set: [], delete: ['"x"'] });
  assert.deepEqual(patch.log?.map((entry) => entry.kind), ['unregistered']);
  assert.deepEqual(view.names(), []);
});

test('View.tick: a point from the live nodes: messages, calls, every node\'s register latency and drop rate', () => {
  const view = new View('c', 'obs', undefined, 1000);
  view.nodeUp({ node: 'a', creation: 'a1' }, 0);
  view.nodeUp({ node: 'b', creation: 'b1' }, 0);
  view.snapshot('a', snapshot('a', 0, { messagesIn: 0, calls: histogram([]), distribution: clusterReport(), registries: { globals: globalsReport() } }));
  view.snapshot('b', snapshot('b', 0, { distribution: clusterReport({ bad_signature: 2 }), registries: { globals: globalsReport({ latency: histogram([30]) }) } }));
  view.tick(0);
  const first = view.takePatch();
  assert.deepEqual(first.point, { t: 0, messages: 0, callMean: null, callP99: null, registerMean: null, registerP99: null, drops: 0 });
  // Drops already counted before the observer came count on the panel, not in the rate.
  assert.deepEqual(first.drops, {
    a: { frames: { malformed: 0, bad_signature: 0 }, registry: { malformed: 0, forged: 0 } },
    b: { frames: { malformed: 0, bad_signature: 2 }, registry: { malformed: 0, forged: 0 } },
  });
  view.snapshot('a', snapshot('a', 1000, { messagesIn: 30, calls: histogram([2, 2]), distribution: clusterReport({ malformed: 5 }), registries: { globals: globalsReport({ latency: histogram([4]), registrations: 1, drops: { forged: 1 } }) } }));
  view.snapshot('b', snapshot('b', 1000, { distribution: clusterReport({ bad_signature: 2 }), registries: { globals: globalsReport({ latency: histogram([30, 0.5, 0.5, 0.5]) }) } }));
  view.tick(1000);
  const patch = view.takePatch();
  // Register latency: a's 4 ms and b's three 0.5 ms since the last tick (b's 30 ms came before it).
  assert.deepEqual(patch.point, { t: 1, messages: 30, callMean: 2, callP99: 2.5, registerMean: (4 + 1.5) / 4, registerP99: 5, drops: 6 });
  assert.deepEqual(patch.drops?.['a'], { frames: { malformed: 5, bad_signature: 0 }, registry: { malformed: 0, forged: 1 } });
  assert.equal(view.state().series.t.length, 2);
  // Nothing new: no drops patch, a zero rate.
  view.snapshot('a', snapshot('a', 2000, { distribution: clusterReport({ malformed: 5 }), registries: { globals: globalsReport({ latency: histogram([4]), drops: { forged: 1 } }) } }));
  view.tick(2000);
  const quiet = view.takePatch();
  assert.equal(quiet.drops, undefined);
  assert.equal(quiet.point?.drops, 0);
  // A node restarting with lower counts adds nothing to the rate.
  view.nodeDown({ node: 'a', creation: 'a1' }, 'restarted', 2500);
  view.nodeUp({ node: 'a', creation: 'a2' }, 2500);
  view.snapshot('a', snapshot('a', 3000, { distribution: clusterReport({ malformed: 1 }), registries: { globals: globalsReport() } }));
  view.tick(3000);
  assert.equal(view.takePatch().point?.drops, 0);
});

test('figuresOf: a node\'s frames and registry from what its snapshot reports; none when it reports none', () => {
  const prev = snapshot('a', 0, { distribution: clusterReport(), registries: { globals: globalsReport({ latency: histogram([1]) }), other: { kind: 'x' } } });
  const cur = snapshot('a', 1000, {
    distribution: clusterReport({ malformed: 2, bad_signature: 1 }),
    registries: { globals: globalsReport({ registrations: 3, latency: histogram([1, 8, 8]), drops: { forged: 4 } }), other: { kind: 'x' } },
  });
  const figures = figuresOf(prev, cur);
  assert.deepEqual(figures.frames, { sent: 1, received: 1, dropped: 3 });
  assert.deepEqual(figures.registry, { registrations: 3, unregistrations: 0, names: 2, conflicts: 0, dropped: 4, registerMean: 8, registerP99: 10 });
  assert.equal(figuresOf(undefined, cur).registry?.registerMean, undefined, 'no interval yet');
  // Under another key, or a registry that is not a globals one: none.
  assert.equal(figuresOf(prev, cur, 'other').registry, undefined);
  assert.equal(figuresOf(prev, cur, 'missing').registry, undefined);
  const bare = snapshot('a', 0);
  assert.equal(figuresOf(undefined, bare).frames, undefined);
  assert.equal(dropsOf(bare, 'globals'), undefined);
  assert.deepEqual(dropsOf(cur, 'globals'), { frames: { malformed: 2, bad_signature: 1 }, registry: { malformed: 0, forged: 4 } });
});

test('route table: exact paths, closed file alphabets, GET and HEAD only', () => {
  assert.equal(matchRoute('GET', '/').kind, 'route');
  assert.deepEqual(matchRoute('GET', '/ui/app.js'), { kind: 'route', route: ROUTES.find((route) => route.name === 'asset'), file: 'app.js' });
  assert.equal((matchRoute('HEAD', '/vendor/uplot.css') as { file?: string }).file, 'uplot.css');
  for (const path of ['/ui/../x.js', '/ui/%2e%2e%2fx.js', '/ui/App.js', '/ui/sub/app.js', '/vendor/.hidden.js', '/index.html', '/events/', '/metrics/x']) {
    assert.equal(matchRoute('GET', path).kind, 'not_found', path);
  }
  assert.equal(matchRoute('POST', '/metrics').kind, 'method_not_allowed');
  assert.equal(matchRoute('DELETE', '/').kind, 'method_not_allowed');
  assert.equal(mimeOf('a.js'), 'text/javascript; charset=utf-8');
  assert.equal(mimeOf('a.exe'), 'application/octet-stream');
});

test('authorize: bearer, cookie, and ?token= opening a session on the page only', () => {
  const page = ROUTES.find((route) => route.name === 'page')!;
  const metrics = ROUTES.find((route) => route.name === 'metrics')!;
  const sessions = new Sessions('roster_observer_t', 'the-token-123', Buffer.alloc(32, 7));
  const request = (over: Partial<Parameters<typeof authorize>[0]>) => ({ authorization: undefined, cookie: undefined, queryToken: undefined, route: page, ...over });
  assert.equal(authorize(request({}), undefined, undefined), 'ok');
  assert.equal(authorize(request({}), 'the-token-123', sessions), 'denied');
  assert.equal(authorize(request({ authorization: 'Bearer the-token-123' }), 'the-token-123', sessions), 'ok');
  assert.equal(authorize(request({ authorization: 'bearer  the-token-123 ' }), 'the-token-123', sessions), 'ok');
  assert.equal(authorize(request({ authorization: 'Bearer the-token-1234' }), 'the-token-123', sessions), 'denied');
  assert.equal(authorize(request({ queryToken: 'the-token-123' }), 'the-token-123', sessions), 'open_session');
  assert.equal(authorize(request({ queryToken: 'the-token-123', route: metrics }), 'the-token-123', sessions), 'denied');
  const cookie = sessions.setCookie().split(';')[0]!;
  assert.ok(!cookie.includes('the-token-123'));
  assert.equal(authorize(request({ cookie: `other=1; ${cookie}`, route: metrics }), 'the-token-123', sessions), 'ok');
  assert.equal(authorize(request({ cookie: 'roster_observer_t=nope' }), 'the-token-123', sessions), 'denied');
  assert.equal(bearerOf('Basic abc'), undefined);
  assert.equal(cookieOf('a=1; b=2', 'b'), '2');
});

test('allowedHost: loopback binds accept loopback names only', () => {
  assert.equal(allowedHost('127.0.0.1:8080', '127.0.0.1', 8080), true);
  assert.equal(allowedHost('localhost:8080', '127.0.0.1', 8080), true);
  assert.equal(allowedHost('[::1]:8080', '::1', 8080), true);
  assert.equal(allowedHost('evil.example:8080', '127.0.0.1', 8080), false);
  assert.equal(allowedHost('127.0.0.1:9999', '127.0.0.1', 8080), false);
  assert.equal(allowedHost(undefined, '127.0.0.1', 8080), false);
  assert.equal(allowedHost('anything:1', '0.0.0.0', 8080), true);
});

test('CSP: the hash of each inline script, nothing unsafe; SSE lines', () => {
  const html = '<script type="importmap">{"imports":{}}</script><script type="module" src="/ui/app.js"></script>';
  assert.deepEqual(inlineScripts(html), ['{"imports":{}}']);
  const hash = scriptHash('{"imports":{}}');
  assert.equal(hash, `'sha256-${createHash('sha256').update('{"imports":{}}').digest('base64')}'`);
  const csp = contentSecurityPolicy([hash]);
  assert.match(csp, /^default-src 'self'; script-src 'self' 'sha256-/);
  assert.ok(!csp.includes('unsafe'));
  assert.equal(formatEvent('patch', { a: 'x\ny' }), 'event: patch\ndata: {"a":"x\\ny"}\n\n');
  assert.throws(() => formatEvent('bad\nevent', {}), TypeError);
});

// ---- cluster-wide supervision, from the names table ------------------------------------------

/** Registers `name` in the view as the observer does: its canonical key, held by `pid` on `owner`. */
function hold(view: View, name: Name, owner: string, pid: string, since = 1): void {
  view.nameRegistered({ key: canonicalName(name), name: typeof name === 'string' ? name : canonicalName(name), owner, pid, epoch: undefined, since });
}

function release(view: View, name: Name, pid: string): void {
  view.nameUnregistered(canonicalName(name), canonicalName(name), pid, 'normal', 9);
}

/** A supervisor's row as node/pid pairs, for compact assertions. */
function shown(view: View, id: string): { members: string[]; children: string[] } | undefined {
  const row = view.distributedSupervisors().find((dsup) => dsup.id === id);
  return row === undefined ? undefined : { members: row.members.map((m) => `${m.node}=${m.pid}`), children: row.children.map((c) => `${c.id}@${c.node}=${c.pid}`) };
}

test('View: a distributed supervisor appears with its first member, gains children and members, and goes with its last member', () => {
  const view = new View('c', 'obs', undefined, 1000);
  hold(view, ['jobs', 'early'], 'b', '<b.1.7>'); // a child seen before any member: kept, shown once a member is
  assert.deepEqual(view.distributedSupervisors(), []);
  assert.equal(view.takePatch().dsups, undefined, 'no supervisor yet: nothing to send');
  hold(view, ['$dsup', 'jobs', 'b'], 'b', '<b.1.2>');
  hold(view, ['$dsup', 'jobs', 'a'], 'a', '<a.1.2>');
  hold(view, ['jobs', 'w1'], 'a', '<a.1.3>');
  hold(view, ['jobs', 7], 'b', '<b.1.4>');
  assert.deepEqual(shown(view, 'jobs'), { members: ['a=<a.1.2>', 'b=<b.1.2>'], children: ['7@b=<b.1.4>', 'early@b=<b.1.7>', 'w1@a=<a.1.3>'] });
  let patch = view.takePatch();
  assert.deepEqual(patch.dsups?.set.map((row) => row.id), ['jobs']);
  assert.deepEqual(patch.dsups?.delete, []);
  assert.deepEqual(view.state().dsups, view.distributedSupervisors());
  assert.equal(view.takePatch().dsups, undefined, 'taken: nothing changed since');

  release(view, ['jobs', 'early'], '<b.1.7>');
  patch = view.takePatch();
  assert.deepEqual(patch.dsups?.set.map((row) => row.children.map((child) => child.id)), [['7', 'w1']]);
  release(view, ['$dsup', 'jobs', 'b'], '<b.1.2>');
  assert.deepEqual(shown(view, 'jobs')?.members, ['a=<a.1.2>']);
  release(view, ['$dsup', 'jobs', 'a'], '<a.1.2>');
  assert.equal(shown(view, 'jobs'), undefined);
  patch = view.takePatch();
  assert.deepEqual(patch.dsups, { set: [], delete: ['jobs'] });
  // Its children's names still held (a member not yet released them) come back with a new member.
  hold(view, ['$dsup', 'jobs', 'c'], 'c', '<c.1.1>');
  assert.deepEqual(shown(view, 'jobs'), { members: ['c=<c.1.1>'], children: ['7@b=<b.1.4>', 'w1@a=<a.1.3>'] });
});

test('View: a child moving to another node after a failover updates, whichever order the release and the new claim arrive in', () => {
  const view = new View('c', 'obs', undefined, 1000);
  hold(view, ['$dsup', 'jobs', 'a'], 'a', '<a.1.1>');
  hold(view, ['$dsup', 'jobs', 'b'], 'b', '<b.1.1>');
  hold(view, ['jobs', 'w1'], 'a', '<a.1.5>');
  hold(view, ['jobs', 'w2'], 'a', '<a.1.6>');
  view.takePatch();
  // Node a goes: its member and w1 released first, then w1 claimed on b.
  release(view, ['$dsup', 'jobs', 'a'], '<a.1.1>');
  release(view, ['jobs', 'w1'], '<a.1.5>');
  hold(view, ['jobs', 'w1'], 'b', '<b.1.9>');
  // w2: claimed on b before a's release reaches the observer; the stale release must not remove it.
  hold(view, ['jobs', 'w2'], 'b', '<b.1.10>');
  release(view, ['jobs', 'w2'], '<a.1.6>');
  assert.deepEqual(shown(view, 'jobs'), { members: ['b=<b.1.1>'], children: ['w1@b=<b.1.9>', 'w2@b=<b.1.10>'] });
  const patch = view.takePatch();
  assert.equal(patch.dsups?.set.length, 1);
  assert.deepEqual(patch.dsups?.set[0]?.children.map((child) => child.node), ['b', 'b']);
});

test('View: names not of the supervision shapes, and $dsup names of a bad shape, are ignored', () => {
  const view = new View('c', 'obs', undefined, 1000);
  const ignored: Name[] = [
    'jobs',
    ['$dsup', 'jobs'],
    ['$dsup', 'jobs', 'a', 'extra'],
    ['$dsup', 7, 'a'],
    ['$dsup', 'jobs', 7],
    ['$dsup', '', 'a'],
    ['$dsup', 'jobs', ''],
    ['$dsup', 'jobs', null],
    ['$dsup', { id: 'jobs' }, 'a'],
    { $dsup: 'jobs', node: 'a' },
    '["$dsup","jobs","a"]', // a string that reads like the tuple: its canonical key is a JSON string
  ];
  for (const [index, name] of ignored.entries()) hold(view, name, 'a', `<a.1.${index}>`);
  assert.deepEqual(view.distributedSupervisors(), []);
  assert.equal(view.takePatch().dsups, undefined);
  hold(view, ['$dsup', 'jobs', 'a'], 'a', '<a.2.1>');
  // Not children: a third element, a non-string first, an object or boolean child id, an empty id; `['$dsup', …]` is never a child.
  for (const [index, name] of ([['jobs', 'w', 'x'], [7, 'w'], ['jobs', { id: 'w' }], ['jobs', true], ['jobs', ''], ['jobs'], ['jobs', null]] as Name[]).entries()) {
    hold(view, name, 'a', `<a.3.${index}>`);
  }
  hold(view, ['other', 'w'], 'a', '<a.4.1>'); // a pair whose first element no member names
  assert.deepEqual(shown(view, 'jobs'), { members: ['a=<a.2.1>'], children: [] });
  assert.deepEqual(view.distributedSupervisors().map((row) => row.id), ['jobs']);
  // The names table itself keeps all of them.
  assert.equal(view.names().length, ignored.length + 7 + 2);
});

test('nameShape reads canonical keys; singletonNameKey inverts singletonId for names it did not hash', () => {
  assert.deepEqual(nameShape(canonicalName(['$dsup', 'jobs', 'n1'])), { kind: 'member', id: 'jobs', node: 'n1' });
  assert.deepEqual(nameShape(canonicalName(['jobs', 3])), { kind: 'child', supervisor: 'jobs', childId: '3' });
  assert.equal(nameShape('["jobs"'), undefined, 'a truncated key is not thrown on');
  assert.equal(nameShape(canonicalName('plain')), undefined);
  const names: Name[] = ['leader', '[looks like a tuple', '{brace', '\u0001marked', ['lock', 3], ['nested', ['x', 1]], { region: 'eu', n: 1 }, 42, true];
  for (const name of names) assert.equal(singletonNameKey(singletonId(name)), canonicalName(name), `singleton of ${canonicalName(name)}`);
  assert.equal(singletonNameKey(singletonId('x'.repeat(400))) === canonicalName('x'.repeat(400)), false, 'a hashed id cannot be inverted');
  assert.equal(singletonNameKey('jobs'), undefined);
  assert.equal(singletonNameKey('singleton:'), undefined);
});

test('View: a singleton shows as a supervisor whose one child is the holder of its name, and follows it to another node', () => {
  const view = new View('c', 'obs', undefined, 1000);
  const name: Name = ['lock', 'db'];
  const id = singletonId(name);
  hold(view, name, 'a', '<a.1.9>'); // its child's name seen before its members
  hold(view, ['$dsup', id, 'a'], 'a', '<a.1.1>');
  hold(view, ['$dsup', id, 'b'], 'b', '<b.1.1>');
  const row = view.distributedSupervisors().find((dsup) => dsup.id === id)!;
  assert.equal(row.singleton, canonicalName(name));
  assert.deepEqual(shown(view, id), { members: ['a=<a.1.1>', 'b=<b.1.1>'], children: ['singleton@a=<a.1.9>'] });
  view.takePatch();
  release(view, ['$dsup', id, 'a'], '<a.1.1>');
  release(view, name, '<a.1.9>');
  let patch = view.takePatch();
  assert.deepEqual(patch.dsups?.set.map((dsup) => dsup.children.length), [0]);
  hold(view, name, 'b', '<b.1.4>');
  patch = view.takePatch();
  assert.deepEqual(patch.dsups?.set.map((dsup) => dsup.children.map((child) => `${child.node}=${child.pid}`)), [['b=<b.1.4>']]);
  // A string singleton name.
  hold(view, ['$dsup', singletonId('leader'), 'b'], 'b', '<b.1.5>');
  hold(view, 'leader', 'b', '<b.1.6>');
  assert.deepEqual(shown(view, singletonId('leader'))?.children, ['singleton@b=<b.1.6>']);
});

test('View: deriving supervision from a large names table touches only what changed', () => {
  const view = new View('c', 'obs', undefined, 1000);
  hold(view, ['$dsup', 'big', 'a'], 'a', '<a.1.1>');
  for (let index = 0; index < 20_000; index++) hold(view, ['big', index], 'a', `<a.2.${index}>`);
  for (let index = 0; index < 20_000; index++) hold(view, `plain-${index}`, 'a', `<a.3.${index}>`);
  assert.equal(shown(view, 'big')?.children.length, 20_000);
  view.takePatch();
  hold(view, ['$dsup', 'small', 'a'], 'a', '<a.4.1>');
  hold(view, ['small', 'w'], 'a', '<a.4.2>');
  const patch = view.takePatch();
  assert.deepEqual(patch.dsups?.set.map((row) => row.id), ['small'], 'an unchanged supervisor is not sent again');
});
