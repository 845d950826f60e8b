/**
 * The observer page in a real browser: Debian's Chromium driven by
 * playwright-core (never a downloaded browser). A 3-node cluster on the
 * memory transport, watched from a fourth node started with role
 * `observer`; everything is checked from the DOM through the page's `data-*`
 * attributes (every member's drops and registry figures among them, and a
 * distributed supervisor's children moving off the lost node), with
 * no console error (a CSP violation would be one) and no page error.
 * Writes docs/observer.png, the README's screenshot.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { GenServer, Supervisor, noreply, reply, via, type Pid } from '@roster/core';
import type { GlobalsRegistry } from '@roster/globals';
import { DistributedSupervisor } from '@roster/supervision';
import { startObserver, type RunningObserver } from '@roster/observer';
import { idler, startWatchedCluster, waitUntil, type Watched } from './helpers.js';

/** What the page functions below use of the browser's DOM (this program compiles without lib.dom). */
declare const document: { querySelectorAll(selector: string): { length: number }; querySelector(selector: string): { getAttribute(name: string): string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT = fileURLToPath(new URL('../../../docs/observer.png', import.meta.url));

/** A counter that crashes on `crash`: the supervised child. */
const Counter: GenServer<number, number> = {
  init: (start) => start,
  handleCall: (request, _from, count) => {
    if (request === 'crash') throw new Error('asked to crash');
    return reply(count, count);
  },
  handleCast: (_message, count) => noreply(count + 1),
};

let watched: Watched;
let observer: RunningObserver;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
const problems: string[] = [];
const DSUP = 'browser-dsup';

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  watched = await startWatchedCluster();
  // A distributed supervisor on the members: `moving` prefers the node the last test stops, `staying` the second.
  const [, second, third] = watched.members as [never, (typeof watched.members)[number], (typeof watched.members)[number]];
  for (const node of watched.members) {
    node.behaviours.register('counter', Counter);
    await DistributedSupervisor.start(node, { id: DSUP });
  }
  // Children placed once every member sees the others (a static child would be placed before the last member starts).
  const first = watched.members[0]!;
  await waitUntil(async () => (await DistributedSupervisor.members(first, DSUP)).length === 3, 'the three members to see each other');
  const moving = await DistributedSupervisor.startChild(first, DSUP, { id: 'moving', behaviour: 'counter', args: 0, placement: [third.name, second.name] });
  const staying = await DistributedSupervisor.startChild(first, DSUP, { id: 'staying', behaviour: 'counter', args: 0, placement: [second.name, third.name] });
  assert.deepEqual([moving.node, staying.node], [third.name, second.name], 'each child on the first node of its placement');
  observer = await startObserver(watched.observer, { interval: 200 });
  userDataDir = mkdtempSync(join(tmpdir(), 'roster-observer-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1440, height: 1000 } });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(observer.url);
});

after(async () => {
  await context?.close();
  await observer?.close();
  await watched?.stop();
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
});

const globals = (index: number): GlobalsRegistry => watched.members[index]!.registry<GlobalsRegistry>('globals');

test('the page loads with no error and shows the 3 member nodes up, and the observer', async () => {
  await page.waitForSelector('[data-connection-state="live"]', { timeout: 10_000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-node][data-role="member"][data-status="up"]').length === 3, undefined, { timeout: 10_000 });
  const members = await page.$$eval('[data-node][data-role="member"]', (els) => els.map((el) => el.getAttribute('data-node')).sort());
  assert.deepEqual(members, watched.members.map((node) => node.name).sort());
  assert.equal(await page.getAttribute(`[data-node="${watched.observer.name}"]`, 'data-role'), 'observer');
  // Figures arrive from every node's snapshot.
  await page.waitForFunction(() => document.querySelectorAll('[data-node][data-role="member"] [data-figure="processes"]').length === 3, undefined, { timeout: 10_000 });
  assert.deepEqual(problems, []);
});

test('a name appears when registered and disappears when its process dies', async () => {
  const [, node2] = watched.members as [never, (typeof watched.members)[number]];
  const pid = idler(node2);
  assert.equal(await globals(1).registerName('browser-visible', pid), 'yes');
  const row = page.locator('tr[data-name="browser-visible"]');
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await row.getAttribute('data-owner'), node2.name);
  assert.equal(await row.getAttribute('data-pid'), pid.key);
  node2.exit(pid, 'kill');
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  await page.locator('[data-log-kind="unregistered"][data-log-name="browser-visible"]').first().waitFor({ timeout: 5000 });
});

test("each member's drops and registry figures, from its own snapshot, on the page", async () => {
  const node2 = watched.members[1]!;
  // node2 registered a name above: its card counts it (the observer's own node, which holds none, counts nothing).
  await page.waitForFunction(
    (name) => Number(document.querySelector(`[data-node="${name}"] [data-figure="registry"]`)?.getAttribute('data-registrations') ?? 0) >= 1,
    node2.name,
    { timeout: 10_000 },
  );
  assert.equal(await page.getAttribute(`[data-node="${watched.observer.name}"] [data-figure="registry"]`, 'data-registrations'), '0');
  await page.locator(`[data-node="${node2.name}"] [data-figure="register-latency"]`).waitFor({ timeout: 5000 });
  // Garbage on the carrier: every node drops it as malformed, and the Dropped panel lists each by name.
  const intruder = await watched.harness.createTransport();
  try {
    await intruder.connect({ cluster: watched.harness.id, node: 'browser-intruder' });
    intruder.broadcast('this is not a frame');
    for (const node of [...watched.members, watched.observer]) {
      await page.locator(`tr[data-drop-node="${node.name}"][data-drop-layer="frames"][data-drop-reason="malformed"]`).waitFor({ timeout: 10_000 });
    }
  } finally {
    await intruder.close();
  }
  const counted = await page.getAttribute(`tr[data-drop-node="${node2.name}"][data-drop-reason="malformed"]`, 'data-drop-count');
  assert.equal(Number(counted), watched.harness.clusterOf(node2.name).stats.dropped.malformed);
  await page.waitForFunction(
    (name) => Number(document.querySelector(`[data-node="${name}"] [data-figure="frames"]`)?.getAttribute('data-frames-dropped') ?? 0) >= 1,
    node2.name,
    { timeout: 10_000 },
  );
  assert.deepEqual(problems, []);
});

test("a crashed child's restart shows in its supervision tree", async () => {
  const node1 = watched.members[0]!;
  const supervisor = await Supervisor.start(
    node1,
    { strategy: 'one_for_one', intensity: 5, period: 10_000, children: [Supervisor.worker('counter', Counter, 0, { name: via('globals', 'counter') })] },
    { name: 'browser-sup' },
  );
  const tree = page.locator(`[data-supervisor="${supervisor.key}"]`);
  await tree.waitFor({ timeout: 10_000 });
  assert.equal(await tree.getAttribute('data-restarts'), '0');
  const [child] = await Supervisor.whichChildren(node1, supervisor);
  const first = child!.pid as Pid;
  assert.equal(await tree.locator('[data-child="counter"]').getAttribute('data-child-pid'), first.key);
  await assert.rejects(node1.call(first, 'crash'));
  await page.waitForFunction((key) => document.querySelector(`[data-supervisor="${key}"]`)?.getAttribute('data-restarts') === '1', supervisor.key, { timeout: 10_000 });
  const restarted = await tree.locator('[data-child="counter"]').getAttribute('data-child-pid');
  assert.notEqual(restarted, first.key, 'the child runs under a new pid');
  assert.ok(restarted !== null && restarted !== '');
  assert.equal(await tree.locator('[data-restart-child="counter"]').count(), 1);
  assert.match((await tree.locator('[data-restart-child="counter"]').textContent()) ?? '', /asked to crash/);
  // The restarted counter got its global name back.
  await page.locator(`tr[data-name="counter"][data-pid="${restarted}"]`).waitFor({ timeout: 10_000 });
});

/** The node the page shows a distributed supervisor's child on; undefined while it shows none. */
async function childNode(childId: string): Promise<string | undefined> {
  const row = page.locator(`[data-dsup="${DSUP}"] [data-dsup-child="${childId}"]`);
  return (await row.count()) === 1 ? ((await row.getAttribute('data-dsup-child-node')) ?? undefined) : undefined;
}

test('cluster-wide supervision: the distributed supervisor, its members up, its children on their nodes', async () => {
  const [node1, node2, node3] = watched.members as [(typeof watched.members)[number], (typeof watched.members)[number], (typeof watched.members)[number]];
  const section = page.locator(`[data-dsup="${DSUP}"]`);
  await section.waitFor({ timeout: 10_000 });
  await waitUntil(async () => (await section.locator('[data-dsup-member][data-dsup-member-status="up"]').count()) === 3, 'three members up');
  const members = await section.locator('[data-dsup-member]').evaluateAll((els) => els.map((el) => el.getAttribute('data-dsup-member')));
  assert.deepEqual(members, [node1.name, node2.name, node3.name].sort());
  let seen: (string | undefined)[] = [];
  await waitUntil(
    async () => (seen = [await childNode('moving'), await childNode('staying')])[0] === node3.name && seen[1] === node2.name,
    () => `moving on ${node3.name}, staying on ${node2.name}; shown: ${seen.join(', ')}`,
  );
  // What the page shows is where the registry says each runs.
  for (const childId of ['moving', 'staying']) {
    const pid = globals(0).whereisName([DSUP, childId]);
    assert.equal(await section.locator(`[data-dsup-child="${childId}"]`).getAttribute('data-dsup-child-pid'), pid?.key);
  }
  assert.deepEqual(problems, []);
});

test("a node's loss shows as down, with its history", async () => {
  // Some traffic first, so the screenshot has something on its charts.
  const [node1, node2] = watched.members as [(typeof watched.members)[number], (typeof watched.members)[number]];
  for (let n = 0; n < 20; n++) {
    node2.cast(via('globals', 'counter'), 'inc');
    await node2.call(via('globals', 'counter'), 'get');
  }
  for (const name of ['billing', 'sessions', ['room', 42]] as const) await globals(0).registerName(name, idler(node1));
  const lost = watched.members[2]!;
  await lost.stop();
  const card = page.locator(`[data-node="${lost.name}"]`);
  await page.waitForFunction((name) => document.querySelector(`[data-node="${name}"]`)?.getAttribute('data-status') === 'down', lost.name, { timeout: 10_000 });
  assert.equal(await card.locator('[data-history="down"]').count(), 1);
  assert.equal(await card.locator('[data-history="up"]').count(), 1);
  await page.locator(`[data-log-kind="nodedown"][data-log-node="${lost.name}"]`).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('[data-node][data-role="member"][data-status="up"]').count(), 2);
  await waitUntil(async () => (await page.locator('tr[data-name="sessions"]').count()) === 1, 'the later names on the page');
  // The distributed supervisor's child on the lost node moved to the next node of its placement; its member there is gone.
  await waitUntil(async () => (await childNode('moving')) === node2.name, 'the moving child on its second node', 15_000);
  assert.equal(await childNode('staying'), node2.name);
  await waitUntil(async () => (await page.locator(`[data-dsup="${DSUP}"] [data-dsup-member="${lost.name}"]`).count()) === 0, 'the lost member gone');
  mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.deepEqual(problems, []);
});
