export { AmqpTransport, type AmqpTransportOptions, type AmqpTransportStats } from './amqp-transport.js';
export { AmqpTransportError, type AmqpTransportErrorCode } from './errors.js';
export { redactUrl } from './redact.js';
