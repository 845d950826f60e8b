/** The public entry names every export; nothing internal leaks through it, and internals are not reachable by path. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as supervision from '@roster/supervision';

test('@roster/supervision exports exactly its public API', async () => {
  assert.deepEqual(Object.keys(supervision).sort(), ['DistributedSupervisor', 'Placer', 'Singleton', 'SupervisionError', 'singletonId']);
  assert.deepEqual(Object.keys(supervision.DistributedSupervisor).sort(), [
    'countChildren',
    'deleteChild',
    'events',
    'getChildSpec',
    'members',
    'migrate',
    'restartChild',
    'start',
    'startChild',
    'startLink',
    'stats',
    'stop',
    'terminateChild',
    'whichChildren',
  ]);
  assert.deepEqual(Object.keys(supervision.Singleton).sort(), ['events', 'migrate', 'start', 'startLink', 'stop', 'where']);
  await assert.rejects(import('@roster/supervision/src/internal/members.js' as string), (error: unknown) => (error as { code?: string }).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED');
});
