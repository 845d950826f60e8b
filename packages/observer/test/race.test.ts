/**
 * Watching changes nothing: three member nodes race `registerName` for the
 * same names, once unwatched and once with an observer polling every node
 * at a short interval and a page's event stream open. Each time, exactly
 * one node wins each name, every node agrees on the winner, and the
 * observer's event stream shows that same winner.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node } from '@roster/core';
import type { GlobalsRegistry } from '@roster/globals';
import { startObserver } from '@roster/observer';
import { idler, startWatchedCluster, waitUntil, type Watched } from './helpers.js';

const NAMES = 25;

let watched: Watched;

before(async () => {
  watched = await startWatchedCluster();
});

after(async () => {
  await watched?.stop();
});

const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');

/** Every member claims every name at once; returns, per name, the nodes that got `yes`. */
async function race(tag: string): Promise<Map<string, string[]>> {
  const winners = new Map<string, string[]>();
  await Promise.all(
    watched.members.flatMap((node) =>
      Array.from({ length: NAMES }, async (_, n) => {
        const name = `${tag}-${n}`;
        const answer = await globals(node).registerName(name, idler(node));
        if (answer === 'yes') winners.set(name, [...(winners.get(name) ?? []), node.name]);
      }),
    ),
  );
  return winners;
}

async function checkOutcome(tag: string, winners: Map<string, string[]>): Promise<void> {
  await Promise.all(watched.members.map((node) => globals(node).sync()));
  for (let n = 0; n < NAMES; n++) {
    const name = `${tag}-${n}`;
    const won = winners.get(name) ?? [];
    assert.equal(won.length, 1, `${name}: winners ${won.join(', ') || 'none'}`);
    const holders = watched.members.map((node) => globals(node).whereisName(name)?.node);
    assert.deepEqual(holders, watched.members.map(() => won[0]), `${name}: the nodes disagree: ${holders.join(', ')}`);
  }
}

test('unwatched: one winner per name', async () => {
  await checkOutcome('plain', await race('plain'));
});

test('watched by an observer (polling every 50 ms, a page connected): still one winner per name, and the event stream shows that winner', async () => {
  const observer = await startObserver(watched.observer, { interval: 50 });
  const controller = new AbortController();
  try {
    const stream = await fetch(new URL('/events', observer.url), { signal: controller.signal });
    assert.equal(stream.status, 200);
    // Read the stream as a page would, folding patches into the names table.
    const table = new Map<string, { owner: string; pid: string }>();
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    void (async () => {
      let text = '';
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (chunk.done) return;
        text += decoder.decode(chunk.value, { stream: true });
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (data === undefined) continue;
          const parsed = JSON.parse(data) as { names?: unknown };
          const rows = Array.isArray(parsed.names) ? parsed.names : ((parsed.names as { set?: unknown[] } | undefined)?.set ?? []);
          for (const key of ((parsed.names as { delete?: string[] } | undefined)?.delete ?? [])) table.delete(key);
          for (const row of rows as { name: string; owner: string; pid: string }[]) table.set(row.name, { owner: row.owner, pid: row.pid });
        }
      }
    })();
    const winners = await race('watched');
    await checkOutcome('watched', winners);
    // The page's table shows the same winners.
    await waitUntil(() => [...winners.keys()].every((name) => table.has(name)), 'every raced name on the event stream');
    for (const [name, [winner]] of winners) {
      assert.equal(table.get(name)?.owner, winner, name);
      assert.equal(table.get(name)?.pid, globals(watched.members[0]!).whereisName(name)?.key, name);
    }
  } finally {
    controller.abort();
    await observer.close();
  }
});
