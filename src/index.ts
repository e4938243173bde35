export {
  Grain,
  readOnly,
  type GrainClass,
  type MailboxLimits,
  type HandlerArgs,
  type HandlerName,
  type HandlerResult,
  type StateOf,
} from './grain/grain.ts';
export {
  StateMachineGrain,
  stateMachine,
  mermaidDiagram,
  type MachineDefinition,
  type MachineState,
  type Transition,
} from './grain/state-machine.ts';
export {
  SagaGrain,
  sagaStep,
  replyToSaga,
  idleSaga,
  type SagaRequest,
  type SagaOutcome,
  type SagaStatus,
  type SagaStep,
  type SagaStepRecord,
  type SagaProgress,
  type SagaState,
  type SagaHandlerName,
} from './grain/saga.ts';
export { GrainId, MAX_GRAIN_KEY_LENGTH } from './grain/grain-id.ts';
export { connect, DEFAULT_ASK_TIMEOUT_MS, type ConnectOptions } from './client/connect.ts';
export { GrainClient, type TopicListener, type TopicSubscription } from './client/grain-client.ts';
export { GrainReference, type CallOptions } from './client/grain-reference.ts';
export { Silo, type SiloStopReason } from './silo/silo.ts';
export { startEventLoopWatchdog } from './silo/event-loop-watchdog.ts';
export {
  DEFAULT_COLLECTION_AGE_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_MESSAGE_ATTEMPTS,
  DEFAULT_MISSED_HEARTBEATS_LIMIT,
  type SiloOptions,
} from './silo/silo-options.ts';
export {
  leastLoadedPlacement,
  preferLocalPlacement,
  randomPlacement,
  type PlacementContext,
  type PlacementStrategy,
} from './placement/placement.ts';
export type { SiloRecord, SiloStatus } from './membership/silo-record.ts';
export type { Logger, LogFields, LogLevel } from './telemetry/logger.ts';
export * from './errors/errors.ts';
export type { DeadLetter } from './mailbox/dead-letters.ts';
export {
  ClusterInspector,
  type GrainView,
  type InspectOptions,
  type MailboxCounts,
  type MailboxQueue,
  type MessageView,
  type QueueDepth,
  type SiloView,
  type SiloViewStatus,
} from './cli/cluster-inspector.ts';
export type { SiloStats } from './telemetry/silo-metrics.ts';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/dashboard-server.ts';
export { Attr as TelemetryAttributes, Metrics as MetricNames, SpanNames, CORRELATION_BAGGAGE_KEY } from './telemetry/semantics.ts';
export { topicMatches } from './pubsub/topic-pattern.ts';
export type { ImplicitSubscription } from './pubsub/subscription-table.ts';
export type { ReminderInfo, ReminderSchedule, ReminderTick, MissedTickPolicy } from './reminders/reminder-table.ts';
export type { TimerSchedule } from './catalog/grain-timers.ts';
export {
  EventSourcedGrain,
  type EventOf,
  type EventRange,
  type JournalEvent,
  type JournalRetention,
  type PublishedEvent,
} from './grain/event-sourced.ts';
