/**
 * The public API of the Mesos v1 scheduler client. Other parts of Locus import
 * from here (wire types from `./types.js` as types only).
 */
export type * from './types.js';
export { TASK_STATES, TERMINAL_TASK_STATES, OPERATION_STATES } from './types.js';
export { RecordIoDecoder, encodeRecord, encodeJsonRecord, DEFAULT_MAX_RECORD_BYTES } from './recordio.js';
export { decodeEvent, decodeEventRecord, KNOWN_EVENT_TYPES, isDecodeError } from './events.js';
export {
  decodeId, decodeLabels, decodeResource, decodeResources, decodeOffer, decodeInverseOffer, decodeTaskStatus, decodeOperationStatus,
  decodeMasterInfo,
} from './wire.js';
export {
  buildFrameworkInfo, toLabels, ops, calls, interpretCallResponse, DEFAULT_FAILOVER_TIMEOUT_SECONDS, LOCUS_CAPABILITIES,
  type FrameworkOptions, type CallResult, type CallOutcome,
} from './calls.js';
export {
  SchedulerClient, frameworkIdValue,
  type ConnectionState, type SchedulerClientEvents, type SchedulerClientOptions, type SubscriptionInfo, type DisconnectInfo,
} from './client.js';
export {
  createDetector, StaticDetector, ZkMasterDetector, parseZkUrl, leaderNode, masterUrlOf, MASTER_NODE_PREFIX,
  type MasterDetector, type DetectorEvents, type ZkUrl, type ZkDetectorOptions,
} from './detector.js';
export { schedulerEndpoint, masterBase, resolveRedirect, readCaFile, SCHEDULER_PATH, type Credentials, type TransportOptions } from './http.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
export { TypedEmitter, type EventMap, type Listener } from './emitter.js';
export * from './resources.js';
