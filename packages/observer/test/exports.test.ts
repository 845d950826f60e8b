/** The public entry names every export; internals are not reachable by path. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as observer from '@roster/observer';

test('@roster/observer exports exactly its public API', async () => {
  assert.deepEqual(Object.keys(observer).sort(), ['OBSERVER_DEFAULTS', 'ObserverError', 'createMetrics', 'resolveObserverOptions', 'startObserver']);
  assert.ok(Object.isFrozen(observer.OBSERVER_DEFAULTS));
  assert.equal(observer.OBSERVER_DEFAULTS.host, '127.0.0.1');
  await assert.rejects(import('@roster/observer/src/internal/http.js' as string), (error: unknown) => (error as { code?: string }).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED');
});
