/**
 * @roster/observer: a live view of a roster cluster in the browser (server-sent
 * events, no build step on the page) and the same figures as Prometheus metrics.
 */
export { startObserver, resolveObserverOptions, OBSERVER_DEFAULTS, type ObserverOptions, type RunningObserver } from './observer.js';
export { createMetrics, type MetricsReading, type MetricsNode, type ObserverMetrics } from './metrics.js';
export { ObserverError, type ObserverErrorCode } from './errors.js';
