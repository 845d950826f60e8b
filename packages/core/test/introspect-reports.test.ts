/**
 * What registries and the cluster layer report in `node.snapshot()`: each
 * installed registry's `introspect()` under its key in `registries`, none for
 * a registry without one, and a throwing (or non-object) `introspect` left
 * out without breaking the snapshot and logged at a bounded rate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { BadArgError, Node, type Name, type NameRegistry, type Pid } from '@roster/core';

/** A registry that holds nothing, with an `introspect` the test controls. */
function stubRegistry(introspect?: () => Readonly<Record<string, unknown>>): NameRegistry {
  const registry: NameRegistry = {
    registerName: async (_name: Name, _pid: Pid) => 'no',
    unregisterName: async () => undefined,
    whereisName: () => undefined,
    send: (name: Name) => {
      throw new BadArgError(`nobody holds ${String(name)}`);
    },
    registered: () => [],
  };
  return introspect === undefined ? registry : { ...registry, introspect };
}

/** A node whose warnings land in `lines` (ROSTER_LOG_LEVEL, which overrides a logger's level, unset while it starts). */
async function loggedNode(name: string, registries: Record<string, NameRegistry>): Promise<{ node: Node; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const saved = process.env['ROSTER_LOG_LEVEL'];
  delete process.env['ROSTER_LOG_LEVEL'];
  try {
    return { node: await Node.start({ name, logger, registries }), lines };
  } finally {
    if (saved !== undefined) process.env['ROSTER_LOG_LEVEL'] = saved;
  }
}

test('each registry with introspect reports under its key, read at each snapshot; one without is absent', async () => {
  let registrations = 0;
  const node = await Node.start({
    name: 'reports-a',
    registries: {
      counted: stubRegistry(() => ({ registrations, kind: 'stub' })),
      silent: stubRegistry(),
    },
  });
  try {
    const first = node.snapshot();
    assert.deepEqual(first.registries, { counted: { registrations: 0, kind: 'stub' } });
    assert.equal(first.distribution, undefined, 'not clustered: no distribution');
    registrations = 3;
    assert.deepEqual(node.snapshot().registries, { counted: { registrations: 3, kind: 'stub' } }, 'read when asked, not cached');
    // A registry installed later reports from then on.
    await node.installRegistry('late', stubRegistry(() => ({ n: 1 })));
    assert.deepEqual(Object.keys(node.snapshot().registries), ['counted', 'late']);
  } finally {
    await node.stop();
  }
});

test('no registries: an empty record', async () => {
  const node = await Node.start({ name: 'reports-b' });
  try {
    assert.deepEqual(node.snapshot().registries, {});
  } finally {
    await node.stop();
  }
});

test('a throwing or non-object introspect is left out, the snapshot intact, and logged at a bounded rate', async () => {
  let calls = 0;
  const { node, lines } = await loggedNode('reports-c', {
    broken: stubRegistry(() => {
      calls++;
      throw new Error('introspect exploded');
    }),
    odd: stubRegistry(() => 42 as unknown as Record<string, unknown>),
    fine: stubRegistry(() => ({ ok: true })),
  });
  try {
    const snapshots = Array.from({ length: 50 }, () => node.snapshot());
    assert.equal(calls, 50, 'asked at every snapshot');
    for (const snapshot of snapshots) {
      assert.deepEqual(snapshot.registries, { fine: { ok: true } });
      assert.equal(snapshot.node, 'reports-c');
      assert.equal(typeof snapshot.processCount, 'number');
    }
    const failures = lines.filter((line) => line['msg'] === 'introspect failed: left out of the snapshot');
    // One line per failing reporter for 50 snapshots in one burst, not 100.
    assert.deepEqual(failures.map((line) => line['reporter']).sort(), ['registry "broken"', 'registry "odd"']);
    const broken = failures.find((line) => line['reporter'] === 'registry "broken"')!;
    assert.match(JSON.stringify(broken['err']), /introspect exploded/);
    const odd = failures.find((line) => line['reporter'] === 'registry "odd"')!;
    assert.match(JSON.stringify(odd['err']), /must return an object, got number/);
  } finally {
    await node.stop();
  }
});
