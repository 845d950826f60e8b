/**
 * The observer over HTTP, without a browser: `/metrics` scraped and parsed
 * while traffic is made (every member's registry operations and drops as
 * its snapshots report them, seen from an observer-role node), the token enforced on every route, the security
 * headers, the loopback default, the event stream, and no secret (cluster
 * secret, broker password, token) in any response.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { GlobalsRegistry } from '@roster/globals';
import { GenServer, reply, type Node } from '@roster/core';
import { ObserverError, startObserver, type RunningObserver } from '@roster/observer';
import { idler, startWatchedCluster, waitUntil, type Watched } from './helpers.js';

const SECRET = 'cluster-secret-Zq8v1xKp';
const PASSWORD = 'brokerPassw0rd-7Hn2';
const TOKEN = 'observer-token-Mc4r9Lw2';
const BROKER = `amqp://admin:${PASSWORD}@broker.example:5672/prod`;

let watched: Watched;
let observer: RunningObserver;
/** Every body any test read: none may hold a secret. */
const bodies: string[] = [];

before(async () => {
  watched = await startWatchedCluster({ secret: SECRET });
  observer = await startObserver(watched.observer, { interval: 100, token: TOKEN, broker: BROKER });
});

after(async () => {
  await observer?.close();
  await watched?.stop();
});

const auth = { Authorization: `Bearer ${TOKEN}` };

async function get(path: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Response & { body_: string }> {
  const response = await fetch(new URL(path, observer.url), { redirect: 'manual', ...init, headers });
  const text = await response.text();
  bodies.push(text, [...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n'));
  return Object.assign(response, { body_: text });
}

/** `name{labels} value` lines of a Prometheus text exposition, by `name{sorted labels}`. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    const labels = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    out.set(`${match[1]}{${labels}}`, Number(match[3]));
  }
  return out;
}

async function scrape(target: RunningObserver = observer): Promise<Map<string, number>> {
  const response = await fetch(new URL('/metrics', target.url), { headers: auth });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  bodies.push(text);
  return parseMetrics(text);
}

const sample = (metrics: Map<string, number>, key: string): number => {
  const value = metrics.get(key);
  assert.notEqual(value, undefined, `no sample ${key}`);
  return value!;
};

/** Waits until a scrape's figure satisfies `check`. */
async function waitForMetric(key: string, check: (value: number) => boolean, target: RunningObserver = observer): Promise<number> {
  let last: number | undefined;
  await waitUntil(async () => {
    last = (await scrape(target)).get(key);
    return last !== undefined && check(last);
  }, () => `${key} (last ${last})`);
  return last!;
}

test('binds 127.0.0.1 by default and says so in its url', async () => {
  assert.match(observer.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const port = Number(new URL(observer.url).port);
  const external = Object.values(networkInterfaces())
    .flat()
    .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal);
  if (external !== undefined) {
    // Not listening on the machine's other addresses.
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const socket = connect({ host: external.address, port }, () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.on('error', resolve);
    });
    assert.equal(error?.code, 'ECONNREFUSED', `reachable on ${external.address}:${port}`);
  }
});

test('every route needs the token: 401 without it or with a wrong one', async () => {
  for (const path of ['/', '/events', '/metrics', '/ui/app.js', '/vendor/preact.js']) {
    const none = await get(path);
    assert.equal(none.status, 401, path);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="roster observer"');
    assert.equal((await get(path, { Authorization: 'Bearer not-the-token' })).status, 401, path);
    assert.equal((await get(path, { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` })).status, 401, path);
  }
  // The query token opens a session on the page only.
  assert.equal((await get(`/metrics?token=${TOKEN}`)).status, 401);
  assert.equal((await get(`/events?token=${TOKEN}`)).status, 401);
  assert.equal((await get('/?token=wrong-token-value')).status, 401);
});

test('bearer works everywhere; ?token= on the page sets an HttpOnly cookie and redirects it out of the URL', async () => {
  assert.equal((await get('/', auth)).status, 200);
  assert.equal((await get('/vendor/uplot.js', auth)).status, 200);
  const opened = await get(`/?token=${encodeURIComponent(TOKEN)}`);
  assert.equal(opened.status, 303);
  assert.equal(opened.headers.get('location'), '/');
  const cookie = opened.headers.get('set-cookie') ?? '';
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.ok(!cookie.includes(TOKEN), 'the cookie must not carry the token itself');
  const pair = cookie.split(';')[0]!;
  assert.equal((await get('/', { Cookie: pair })).status, 200);
  assert.equal((await get('/ui/app.js', { Cookie: pair })).status, 200);
  assert.equal((await get('/', { Cookie: `${pair.split('=')[0]}=forged` })).status, 401);
});

test('headers: CSP (with the hash of the inline import map), no referrer, fixed MIME types; 404, 405 and a foreign Host refused', async () => {
  const page = await get('/', auth);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /(^|; )default-src 'self'(;|$)/);
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page.body_)?.[1];
  assert.ok(importMap !== undefined, 'the page has an inline import map');
  const hash = createHash('sha256').update(importMap).digest('base64');
  assert.ok(csp.includes(`script-src 'self' 'sha256-${hash}'`), csp);
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);
  assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  for (const [path, type] of [
    ['/ui/app.js', 'text/javascript; charset=utf-8'],
    ['/ui/style.css', 'text/css; charset=utf-8'],
    ['/vendor/preact.js', 'text/javascript; charset=utf-8'],
    ['/vendor/htm-preact.js', 'text/javascript; charset=utf-8'],
    ['/vendor/uplot.css', 'text/css; charset=utf-8'],
  ] as const) {
    const response = await get(path, auth);
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get('content-type'), type, path);
    assert.equal(response.headers.get('content-security-policy'), csp, path);
  }
  // Every import-map target is served.
  for (const target of Object.values((JSON.parse(importMap) as { imports: Record<string, string> }).imports)) assert.equal((await get(target, auth)).status, 200, target);
  for (const path of ['/nope', '/ui/../package.json', '/ui/%2e%2e/package.json', '/vendor/left-pad.js', '/ui/missing.js', '/vendor/../../etc/passwd']) {
    assert.equal((await get(path, auth)).status, 404, path);
  }
  assert.equal((await get('/', auth, { method: 'POST' })).status, 405);
  // Not reachable under another host name (DNS rebinding).
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(new URL('/', observer.url), { headers: { ...auth, Host: `evil.example:${new URL(observer.url).port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 421);
});

test('/metrics: figures per node, moving as traffic is made', async () => {
  const [node1, node2] = watched.members as [Node, Node];
  const before = await waitForMetric(`roster_processes{node="${node1.name}"}`, () => true);
  for (const node of watched.members) assert.equal(sample(await scrape(), `roster_node_up{node="${node.name}"}`), 1);
  const pids = Array.from({ length: 25 }, () => idler(node1));
  await waitForMetric(`roster_processes{node="${node1.name}"}`, (value) => value === before + 25);

  // Messages: node1 sends 40 to a process of node2.
  // A process that never takes its messages: its mailbox grows.
  const sink = node2.spawn(async (self) => {
    await self.receive((message) => message === 'never sent');
  });
  const inBefore = await waitForMetric(`roster_messages_in_total{node="${node2.name}"}`, () => true);
  const outBefore = sample(await scrape(), `roster_messages_out_total{node="${node1.name}"}`);
  for (let n = 0; n < 40; n++) node1.send(sink, { n });
  await waitForMetric(`roster_messages_in_total{node="${node2.name}"}`, (value) => value >= inBefore + 40);
  assert.ok(sample(await scrape(), `roster_messages_out_total{node="${node1.name}"}`) >= outBefore + 40);
  await waitForMetric(`roster_mailbox_max{node="${node2.name}"}`, (value) => value >= 40);

  // Calls: answered ones go into the latency histogram, failed ones only into the counts.
  for (const pid of pids) node1.exit(pid, 'kill');
  const pong = await GenServer.start(node2, { init: () => 0, handleCall: (_request: unknown, _from: unknown, count: number) => reply('pong', count + 1) }, undefined);
  const callKey = `roster_calls_total{node="${node1.name}"}`;
  const callsBefore = await waitForMetric(callKey, () => true);
  const failedBefore = sample(await scrape(), `roster_calls_failed_total{node="${node1.name}"}`);
  const countBefore = sample(await scrape(), `roster_call_duration_seconds_count{node="${node1.name}"}`);
  for (let n = 0; n < 6; n++) assert.equal(await node1.call(pong, 'ping'), 'pong');
  const failed = await Promise.allSettled(Array.from({ length: 4 }, () => node1.call(sink, 'ping', { timeout: 30 })));
  assert.ok(failed.every((result) => result.status === 'rejected'));
  // A snapshot taken before the last failures settled may show the calls but not yet their failures: wait for both.
  await waitForMetric(`roster_calls_failed_total{node="${node1.name}"}`, (value) => value === failedBefore + 4);
  const metrics = await scrape();
  assert.equal(sample(metrics, callKey), callsBefore + 10);
  assert.equal(sample(metrics, `roster_call_duration_seconds_count{node="${node1.name}"}`), countBefore + 6);
  assert.equal(sample(metrics, `roster_call_duration_seconds_bucket{le="+Inf",node="${node1.name}"}`), countBefore + 6);
  assert.ok(sample(metrics, `roster_call_duration_seconds_sum{node="${node1.name}"}`) > 0);
});

test('/metrics: drops by reason, on the observer node', async () => {
  const key = (reason: string): string => `roster_frames_dropped_total{node="${watched.observer.name}",reason="${reason}"}`;
  const metrics = await scrape();
  const unsigned = sample(metrics, key('bad_signature'));
  const oversized = sample(metrics, key('oversized'));
  const intruder = await watched.harness.createTransport();
  await intruder.connect({ cluster: watched.harness.id, node: 'intruder' });
  // The cluster has a secret: frames without its signature are dropped as bad_signature, a huge one as oversized.
  intruder.broadcast('this is not a frame');
  intruder.broadcast('{"neither": "is this"}');
  intruder.broadcast('x'.repeat(2 * 1024 * 1024));
  await waitForMetric(key('bad_signature'), (value) => value === unsigned + 2);
  await waitForMetric(key('oversized'), (value) => value === oversized + 1);
  await intruder.close();
});

test("/metrics on an observer-role node: a member's registry operations, latency and drops move, from its snapshots", async () => {
  const [node1, node2] = watched.members as [Node, Node];
  const self = watched.observer.name;
  const ops = (node: string, op: string): string => `roster_registry_operations_total{node="${node}",op="${op}"}`;
  const registered = await waitForMetric(ops(node2.name, 'register'), () => true);
  let metrics = await scrape();
  const unregistered = sample(metrics, ops(node2.name, 'unregister'));
  const timed = sample(metrics, `roster_registry_register_duration_seconds_count{node="${node2.name}"}`);
  const elsewhere = sample(metrics, ops(node1.name, 'register'));
  const registry = node2.registry<GlobalsRegistry>('globals');
  for (let n = 0; n < 5; n++) assert.equal(await registry.registerName(['observed', n], idler(node2)), 'yes');
  await registry.unregisterName(['observed', 0]);
  await waitForMetric(ops(node2.name, 'register'), (value) => value === registered + 5);
  await waitForMetric(ops(node2.name, 'unregister'), (value) => value === unregistered + 1);
  await waitForMetric(`roster_registry_register_duration_seconds_count{node="${node2.name}"}`, (value) => value === timed + 5);
  metrics = await scrape();
  assert.equal(sample(metrics, `roster_registry_register_duration_seconds_bucket{le="+Inf",node="${node2.name}"}`), timed + 5);
  assert.ok(sample(metrics, `roster_registry_register_duration_seconds_sum{node="${node2.name}"}`) > 0);
  assert.equal(sample(metrics, ops(node1.name, 'register')), elsewhere, "a peer's votes are not its own operations");
  // The observer node holds no name and registers nothing: its own figures stay at 0.
  assert.equal(sample(metrics, ops(self, 'register')), 0);
  assert.equal(sample(metrics, `roster_registry_register_duration_seconds_count{node="${self}"}`), 0);
  await waitForMetric(`roster_registry_names{node="${node1.name}"}`, (value) => value === sample(metrics, `roster_registry_names{node="${node2.name}"}`));
  assert.equal(sample(metrics, `roster_cluster_peers{node="${node2.name}"}`), node2.nodes().length);

  // A frame with no signature, sent to node2 alone: node2 drops it (bad_signature), nobody else sees it.
  const dropped = (node: string, reason: string): string => `roster_frames_dropped_total{node="${node}",reason="${reason}"}`;
  metrics = await scrape();
  const target = sample(metrics, dropped(node2.name, 'bad_signature'));
  const bystander = sample(metrics, dropped(node1.name, 'bad_signature'));
  const observerOwn = sample(metrics, dropped(self, 'bad_signature'));
  const address = watched.harness.transportOf(node2.name).address;
  assert.ok(address !== undefined);
  const intruder = await watched.harness.createTransport();
  try {
    await intruder.connect({ cluster: watched.harness.id, node: 'intruder-direct' });
    intruder.send(address, '{"v":1,"unsigned":true}');
    intruder.send(address, 'not even json');
    await waitForMetric(dropped(node2.name, 'bad_signature'), (value) => value === target + 2);
  } finally {
    await intruder.close();
  }
  metrics = await scrape();
  assert.equal(sample(metrics, dropped(node1.name, 'bad_signature')), bystander);
  assert.equal(sample(metrics, dropped(self, 'bad_signature')), observerOwn);
});

test('startObserver on a member node: registry operations and their latency, per node', async () => {
  const node1 = watched.members[0]!;
  const member = await startObserver(node1, { interval: 100 });
  try {
    const ops = `roster_registry_operations_total{node="${node1.name}",op="register"}`;
    const before = await waitForMetric(ops, () => true, member);
    const histogramBefore = sample(await scrape(member), `roster_registry_register_duration_seconds_count{node="${node1.name}"}`);
    const registry = node1.registry<GlobalsRegistry>('globals');
    for (let n = 0; n < 7; n++) assert.equal(await registry.registerName(['metrics', n], idler(node1)), 'yes');
    const metrics = await scrape(member);
    assert.equal(sample(metrics, ops), before + 7);
    assert.equal(sample(metrics, `roster_registry_register_duration_seconds_count{node="${node1.name}"}`), histogramBefore + 7);
    assert.ok(sample(metrics, `roster_registry_names{node="${node1.name}"}`) >= 7);
    // The same names as seen from the observer node.
    await waitForMetric(`roster_registry_names{node="${watched.observer.name}"}`, (value) => value >= 7);
  } finally {
    await member.close();
  }
});

test('the event stream: the whole view first, then a patch when a name is registered', async () => {
  const controller = new AbortController();
  const response = await fetch(new URL('/events', observer.url), { headers: auth, signal: controller.signal });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const events: { event: string; data: unknown }[] = [];
  const next = async (check: (event: { event: string; data: unknown }) => boolean): Promise<{ event: string; data: unknown }> => {
    for (;;) {
      const found = events.find(check);
      if (found !== undefined) return found;
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream ended');
      text += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) {
          bodies.push(data);
          events.push({ event, data: JSON.parse(data) });
        }
      }
    }
  };
  try {
    const view = (await next((event) => event.event === 'view')).data as { cluster: string; broker: string; nodes: { name: string }[] };
    assert.equal(view.cluster, watched.harness.id);
    assert.equal(view.broker, 'amqp://***@broker.example:5672/prod');
    assert.ok(view.nodes.some((node) => node.name === watched.members[1]!.name));
    const pid = idler(watched.members[1]!);
    await watched.members[1]!.registry<GlobalsRegistry>('globals').registerName('streamed', pid);
    const patch = await next((event) => event.event === 'patch' && JSON.stringify(event.data).includes('"streamed"'));
    const set = (patch.data as { names?: { set: { name: string; pid: string; owner: string }[] } }).names?.set ?? [];
    assert.deepEqual(
      set.filter((row) => row.name === 'streamed').map((row) => [row.owner, row.pid]),
      [[watched.members[1]!.name, pid.key]],
    );
  } finally {
    controller.abort();
  }
});

test("a node's loss: node_up goes to 0 and nodedown_total counts it", async () => {
  const lost = watched.members[2]!;
  await waitForMetric(`roster_nodedown_total{node="${lost.name}"}`, (value) => value === 0);
  await lost.stop();
  await waitForMetric(`roster_node_up{node="${lost.name}"}`, (value) => value === 0);
  const metrics = await scrape();
  assert.equal(sample(metrics, `roster_nodedown_total{node="${lost.name}"}`), 1);
  assert.equal(sample(metrics, `roster_nodeup_total{node="${lost.name}"}`), 1);
  // A lost node's figures are no longer exported.
  assert.equal(metrics.has(`roster_processes{node="${lost.name}"}`), false);
});

test('no response carried the cluster secret, the broker password or the token', () => {
  assert.ok(bodies.length > 20);
  for (const body of bodies) {
    for (const secret of [SECRET, PASSWORD, TOKEN]) assert.ok(!body.includes(secret), `a response held a secret: ${body.slice(0, 200)}`);
  }
});

test('bad options and a node outside any cluster are refused with typed errors', async () => {
  const node = watched.observer;
  await assert.rejects(startObserver(node, { prot: 1 } as never), (error: unknown) => error instanceof TypeError && /unknown option "prot"/.test(error.message));
  await assert.rejects(startObserver(node, { port: 70_000 }), /option port must be an integer from 0 to 65535, got 70000/);
  await assert.rejects(startObserver(node, { interval: 0 }), /option interval must be a number of ms >= 50, got 0/);
  await assert.rejects(startObserver(node, { token: 'short' }), /option token must be a string of at least 8/);
  await assert.rejects(startObserver(node, { host: '' }), /option host must be a non-empty string/);
  const { Node } = await import('@roster/core');
  const lonely = await Node.start({ name: 'lonely' });
  try {
    await assert.rejects(startObserver(lonely), (error: unknown) => error instanceof ObserverError && error.code === 'not_clustered');
  } finally {
    await lonely.stop();
  }
  const port = Number(new URL(observer.url).port);
  await assert.rejects(startObserver(node, { port }), (error: unknown) => error instanceof ObserverError && error.code === 'listen_failed');
});
