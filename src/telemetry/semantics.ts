/**
 * Every span name, attribute key, baggage key and metric name redgrain emits, in one place. The
 * README's observability section documents each; change them together.
 */

/** The instrumentation scope of redgrain's tracer and meter. */
export const INSTRUMENTATION_NAME = 'redgrain';

/** The value of `messaging.system` and `rpc.system` on redgrain's spans. */
export const MESSAGING_SYSTEM = 'redgrain';

/** Span names; `{type}` is the grain type, `{method}` the handler. */
export const SpanNames = {
  /** One-way `send`: producer span, `send grain.{type}.{key}`. */
  send: (type: string) => `send ${destinationTemplate(type)}`,
  /** `ask` on the caller's side (RPC client) and in the grain's turn (RPC server): `{type}/{method}`. */
  call: (type: string, method: string) => `${type}/${method}`,
  /** A one-way message's turn: consumer span, `process grain.{type}.{key}`. */
  process: (type: string) => `process ${destinationTemplate(type)}`,
  /** The time a message waited in the grain's mailbox: `wait grain.{type}.{key}`. */
  wait: (type: string) => `wait ${destinationTemplate(type)}`,
  activate: (type: string) => `activate ${type}`,
  deactivate: (type: string) => `deactivate ${type}`,
  /** A timer tick's turn: `timer {type}.{timer name}`. */
  timer: (type: string, name: string) => `timer ${type}.${name}`,
  stateLoad: (type: string) => `load state ${type}`,
  stateCommit: (type: string) => `commit state ${type}`,
} as const;

/** The low-cardinality name of a grain's mailbox, for span names and `messaging.destination.template`. */
export function destinationTemplate(type: string): string {
  return `grain.${type}.{key}`;
}

/** The name of one grain's mailbox, for `messaging.destination.name`. */
export function destinationName(type: string, key: string): string {
  return `grain.${type}.${key}`;
}

/** Attribute keys: OpenTelemetry semantic conventions first, redgrain's own under `redgrain.`. */
export const Attr = {
  messagingSystem: 'messaging.system',
  messagingOperationType: 'messaging.operation.type',
  messagingOperationName: 'messaging.operation.name',
  messagingDestinationName: 'messaging.destination.name',
  messagingDestinationTemplate: 'messaging.destination.template',
  messagingMessageId: 'messaging.message.id',
  messagingConversationId: 'messaging.message.conversation_id',
  messagingDeliveryCount: 'messaging.message.delivery_count',
  rpcSystem: 'rpc.system',
  rpcService: 'rpc.service',
  rpcMethod: 'rpc.method',
  errorType: 'error.type',
  grainType: 'redgrain.grain.type',
  grainKey: 'redgrain.grain.key',
  grainMethod: 'redgrain.grain.method',
  correlationId: 'redgrain.correlation_id',
  siloId: 'redgrain.silo.id',
  epoch: 'redgrain.activation.epoch',
  outcome: 'redgrain.message.outcome',
  stateFieldsWritten: 'redgrain.state.fields_written',
  stateFieldsRemoved: 'redgrain.state.fields_removed',
  /** On a state commit: how many messages' turns it commits (0 outside a message). */
  batchSize: 'redgrain.state.batch_size',
  deactivationReason: 'redgrain.deactivation.reason',
} as const;

/** The baggage entry that carries the correlation id across processes. */
export const CORRELATION_BAGGAGE_KEY = 'redgrain.correlation_id';

/** Metric names (instruments of the `redgrain` meter). */
export const Metrics = {
  messagesProcessed: 'redgrain.messages.processed',
  messagesFailed: 'redgrain.messages.failed',
  messagesRetried: 'redgrain.messages.retried',
  messageDuration: 'redgrain.message.duration',
  messageQueueWait: 'redgrain.message.queue_wait',
  mailboxDepth: 'redgrain.mailbox.depth',
  activationsLive: 'redgrain.activations.live',
  activationsActivated: 'redgrain.activations.activated',
  activationsDeactivated: 'redgrain.activations.deactivated',
  directoryConflicts: 'redgrain.directory.conflicts',
  deadLetters: 'redgrain.dead_letters',
} as const;
