export * from './rabbitmq.js';
export * from './cluster-harness.js';
export * from './conformance.js';
export * from './waiting.js';
