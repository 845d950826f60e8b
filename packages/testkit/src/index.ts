export * from './rabbitmq.js';
export * from './cluster-harness.js';
