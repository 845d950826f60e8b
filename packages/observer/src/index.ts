/**
 * @roster/observer: a live view of a roster cluster in the browser (server-sent
 * events, no build step on the page) and the same figures as Prometheus metrics.
 */
export {};
