/**
 * The Mesos v1 wire types Locus uses, in their JSON encoding (field names are
 * the proto field names: `include/mesos/v1/mesos.proto` and
 * `include/mesos/v1/scheduler/scheduler.proto`). Other parts of Locus import
 * these as types only; decoding from the wire happens in `events.ts`.
 */

/** A proto `*ID` message: `{ "value": "..." }`. */
export interface Id {
  readonly value: string;
}
export type FrameworkID = Id;
export type AgentID = Id;
export type OfferID = Id;
export type TaskID = Id;
export type ExecutorID = Id;
export type ContainerID = Id & { readonly parent?: ContainerID };
export type OperationID = Id;

export interface Label {
  readonly key: string;
  readonly value?: string;
}
export interface Labels {
  readonly labels: readonly Label[];
}

export interface Range {
  readonly begin: number;
  readonly end: number;
}

export type ValueType = 'SCALAR' | 'RANGES' | 'SET' | 'TEXT';

export interface AllocationInfo {
  readonly role?: string;
}

/** One entry of `Resource.reservations` (RESERVATION_REFINEMENT). */
export interface ReservationInfo {
  readonly type?: 'STATIC' | 'DYNAMIC';
  readonly role?: string;
  readonly principal?: string;
  readonly labels?: Labels;
}

export interface DiskInfo {
  readonly persistence?: { readonly id: string; readonly principal?: string };
  readonly volume?: Volume;
  readonly source?: { readonly type: string; readonly path?: { readonly root?: string }; readonly mount?: { readonly root?: string } };
}

export interface Volume {
  readonly mode: 'RW' | 'RO';
  readonly container_path: string;
  readonly host_path?: string;
  /** SANDBOX_PATH with PARENT: a path in the parent container's sandbox (nested containers). */
  readonly source?: { readonly type: 'SANDBOX_PATH'; readonly sandbox_path: { readonly type: 'SELF' | 'PARENT'; readonly path: string } };
}

/** A Mesos resource. `role` / `reservation` are the pre-refinement format, kept for old masters. */
export interface Resource {
  readonly name: string;
  readonly type: ValueType;
  readonly scalar?: { readonly value: number };
  readonly ranges?: { readonly range: readonly Range[] };
  readonly set?: { readonly item: readonly string[] };
  readonly role?: string;
  readonly allocation_info?: AllocationInfo;
  readonly reservation?: ReservationInfo;
  readonly reservations?: readonly ReservationInfo[];
  readonly disk?: DiskInfo;
  readonly shared?: Record<string, never>;
  readonly provider_id?: Id;
}

export interface Attribute {
  readonly name: string;
  readonly type: ValueType;
  readonly scalar?: { readonly value: number };
  readonly ranges?: { readonly range: readonly Range[] };
  readonly set?: { readonly item: readonly string[] };
  readonly text?: { readonly value: string };
}

export interface Address {
  readonly hostname?: string;
  readonly ip?: string;
  readonly port: number;
}

export interface URL {
  readonly scheme: string;
  readonly address: Address;
  readonly path?: string;
}

export interface Offer {
  readonly id: OfferID;
  readonly framework_id: FrameworkID;
  readonly agent_id: AgentID;
  readonly hostname: string;
  readonly url?: URL;
  readonly resources: readonly Resource[];
  readonly attributes?: readonly Attribute[];
  readonly executor_ids?: readonly ExecutorID[];
  readonly allocation_info?: AllocationInfo;
  readonly unavailability?: Unavailability;
}

export interface Unavailability {
  readonly start: { readonly nanoseconds: number };
  readonly duration?: { readonly nanoseconds: number };
}

export interface InverseOffer {
  readonly id: OfferID;
  readonly url?: URL;
  readonly framework_id: FrameworkID;
  readonly agent_id?: AgentID;
  readonly unavailability: Unavailability;
}

export interface Environment {
  readonly variables: readonly { readonly name: string; readonly type?: 'VALUE' | 'SECRET'; readonly value?: string }[];
}

export interface CommandInfo {
  readonly uris?: readonly { readonly value: string; readonly executable?: boolean; readonly extract?: boolean; readonly cache?: boolean; readonly output_file?: string }[];
  readonly environment?: Environment;
  readonly shell?: boolean;
  readonly value?: string;
  readonly arguments?: readonly string[];
  readonly user?: string;
}

export interface ContainerInfo {
  readonly type: 'MESOS' | 'DOCKER';
  readonly volumes?: readonly Volume[];
  readonly hostname?: string;
  readonly mesos?: { readonly image?: { readonly type: 'DOCKER' | 'APPC'; readonly docker?: { readonly name: string } } };
  readonly network_infos?: readonly unknown[];
}

export interface ExecutorInfo {
  readonly type?: 'DEFAULT' | 'CUSTOM';
  readonly executor_id: ExecutorID;
  readonly framework_id?: FrameworkID;
  readonly command?: CommandInfo;
  readonly container?: ContainerInfo;
  readonly resources?: readonly Resource[];
  readonly name?: string;
  readonly labels?: Labels;
}

export interface TaskInfo {
  readonly name: string;
  readonly task_id: TaskID;
  readonly agent_id: AgentID;
  readonly resources: readonly Resource[];
  readonly executor?: ExecutorInfo;
  readonly command?: CommandInfo;
  readonly container?: ContainerInfo;
  readonly labels?: Labels;
  readonly kill_policy?: { readonly grace_period?: { readonly nanoseconds: number } };
  readonly max_completion_time?: { readonly nanoseconds: number };
}

export interface TaskGroupInfo {
  readonly tasks: readonly TaskInfo[];
}

export const TASK_STATES = [
  'TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_FINISHED', 'TASK_FAILED',
  'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED', 'TASK_UNREACHABLE', 'TASK_GONE',
  'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States after which a task never changes again. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED',
  'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
]);

export type TaskStatusSource = 'SOURCE_MASTER' | 'SOURCE_AGENT' | 'SOURCE_EXECUTOR';

export interface TaskStatus {
  readonly task_id: TaskID;
  readonly state: TaskState;
  readonly message?: string;
  readonly source?: TaskStatusSource;
  /** Kept as a string: new masters add reasons old clients do not know. */
  readonly reason?: string;
  readonly data?: string;
  readonly agent_id?: AgentID;
  readonly executor_id?: ExecutorID;
  readonly timestamp?: number;
  /** Base64; present when the update must be acknowledged. */
  readonly uuid?: string;
  readonly healthy?: boolean;
  readonly labels?: Labels;
  readonly container_status?: {
    readonly container_id?: ContainerID;
    readonly executor_pid?: number;
    readonly network_infos?: readonly unknown[];
  };
  readonly unreachable_time?: { readonly nanoseconds: number };
  readonly limitation?: { readonly resources?: readonly Resource[] };
}

export const OPERATION_STATES = [
  'OPERATION_UNSUPPORTED', 'OPERATION_PENDING', 'OPERATION_FINISHED', 'OPERATION_FAILED', 'OPERATION_ERROR',
  'OPERATION_DROPPED', 'OPERATION_UNREACHABLE', 'OPERATION_GONE_BY_OPERATOR', 'OPERATION_RECOVERING',
  'OPERATION_UNKNOWN',
] as const;
export type OperationState = (typeof OPERATION_STATES)[number];

export interface OperationStatus {
  readonly operation_id?: OperationID;
  readonly state: OperationState;
  readonly message?: string;
  readonly converted_resources?: readonly Resource[];
  /** `{ "value": base64 }` on the wire; present when it must be acknowledged. */
  readonly uuid?: { readonly value: string };
  readonly agent_id?: AgentID;
  readonly resource_provider_id?: Id;
}

export type OperationType =
  | 'LAUNCH' | 'LAUNCH_GROUP' | 'RESERVE' | 'UNRESERVE' | 'CREATE' | 'DESTROY' | 'GROW_VOLUME' | 'SHRINK_VOLUME';

/** `Offer.Operation`: what an ACCEPT does with the offered resources. */
export type Operation =
  | { readonly type: 'LAUNCH'; readonly id?: OperationID; readonly launch: { readonly task_infos: readonly TaskInfo[] } }
  | { readonly type: 'LAUNCH_GROUP'; readonly id?: OperationID; readonly launch_group: { readonly executor: ExecutorInfo; readonly task_group: TaskGroupInfo } }
  | { readonly type: 'RESERVE'; readonly id?: OperationID; readonly reserve: { readonly resources?: readonly Resource[]; readonly source?: readonly Resource[] } }
  | { readonly type: 'UNRESERVE'; readonly id?: OperationID; readonly unreserve: { readonly resources: readonly Resource[] } }
  | { readonly type: 'CREATE'; readonly id?: OperationID; readonly create: { readonly volumes: readonly Resource[] } }
  | { readonly type: 'DESTROY'; readonly id?: OperationID; readonly destroy: { readonly volumes: readonly Resource[] } };

export interface Filters {
  readonly refuse_seconds?: number;
}

export type FrameworkCapabilityType =
  | 'REVOCABLE_RESOURCES' | 'TASK_KILLING_STATE' | 'GPU_RESOURCES' | 'SHARED_RESOURCES' | 'PARTITION_AWARE'
  | 'MULTI_ROLE' | 'RESERVATION_REFINEMENT' | 'REGION_AWARE';

export interface FrameworkInfo {
  readonly user: string;
  readonly name: string;
  readonly id?: FrameworkID;
  readonly failover_timeout?: number;
  readonly checkpoint?: boolean;
  /** Legacy single role (frameworks without MULTI_ROLE). */
  readonly role?: string;
  readonly roles?: readonly string[];
  readonly hostname?: string;
  readonly principal?: string;
  readonly webui_url?: string;
  readonly capabilities?: readonly { readonly type: FrameworkCapabilityType }[];
  readonly labels?: Labels;
}

export interface MasterInfo {
  readonly id: string;
  readonly ip?: number;
  readonly port: number;
  readonly pid?: string;
  readonly hostname?: string;
  readonly version?: string;
  readonly address?: Address;
  readonly capabilities?: readonly { readonly type: string }[];
}

/** Events the master sends on the subscription stream. */
export type Event =
  | { readonly type: 'SUBSCRIBED'; readonly subscribed: { readonly framework_id: FrameworkID; readonly heartbeat_interval_seconds?: number; readonly master_info?: MasterInfo } }
  | { readonly type: 'OFFERS'; readonly offers: { readonly offers?: readonly Offer[]; readonly inverse_offers?: readonly InverseOffer[] } }
  | { readonly type: 'INVERSE_OFFERS'; readonly inverse_offers: { readonly inverse_offers: readonly InverseOffer[] } }
  | { readonly type: 'RESCIND'; readonly rescind: { readonly offer_id: OfferID } }
  | { readonly type: 'RESCIND_INVERSE_OFFER'; readonly rescind_inverse_offer: { readonly inverse_offer_id: OfferID } }
  | { readonly type: 'UPDATE'; readonly update: { readonly status: TaskStatus } }
  | { readonly type: 'UPDATE_OPERATION_STATUS'; readonly update_operation_status: { readonly status: OperationStatus } }
  | { readonly type: 'MESSAGE'; readonly message: { readonly agent_id: AgentID; readonly executor_id: ExecutorID; readonly data: string } }
  | { readonly type: 'FAILURE'; readonly failure: { readonly agent_id?: AgentID; readonly executor_id?: ExecutorID; readonly status?: number } }
  | { readonly type: 'ERROR'; readonly error: { readonly message: string } }
  | { readonly type: 'HEARTBEAT' }
  /** A type this version of Locus does not know; kept, not fatal. */
  | { readonly type: 'UNKNOWN'; readonly originalType: string; readonly raw: unknown };

/** The event type names. */
export type EventType = Event['type'];

/** Calls a framework sends (without framework_id, which the client fills in). */
export type CallBody =
  | { readonly type: 'SUBSCRIBE'; readonly subscribe: { readonly framework_info: FrameworkInfo; readonly suppressed_roles?: readonly string[] } }
  | { readonly type: 'TEARDOWN' }
  | { readonly type: 'ACCEPT'; readonly accept: { readonly offer_ids: readonly OfferID[]; readonly operations: readonly Operation[]; readonly filters?: Filters } }
  | { readonly type: 'DECLINE'; readonly decline: { readonly offer_ids: readonly OfferID[]; readonly filters?: Filters } }
  | { readonly type: 'ACCEPT_INVERSE_OFFERS'; readonly accept_inverse_offers: { readonly inverse_offer_ids: readonly OfferID[]; readonly filters?: Filters } }
  | { readonly type: 'DECLINE_INVERSE_OFFERS'; readonly decline_inverse_offers: { readonly inverse_offer_ids: readonly OfferID[]; readonly filters?: Filters } }
  | { readonly type: 'REVIVE'; readonly revive?: { readonly roles?: readonly string[] } }
  | { readonly type: 'SUPPRESS'; readonly suppress?: { readonly roles?: readonly string[] } }
  | { readonly type: 'KILL'; readonly kill: { readonly task_id: TaskID; readonly agent_id?: AgentID } }
  | { readonly type: 'SHUTDOWN'; readonly shutdown: { readonly executor_id: ExecutorID; readonly agent_id: AgentID } }
  | { readonly type: 'ACKNOWLEDGE'; readonly acknowledge: { readonly agent_id: AgentID; readonly task_id: TaskID; readonly uuid: string } }
  | { readonly type: 'ACKNOWLEDGE_OPERATION_STATUS'; readonly acknowledge_operation_status: { readonly agent_id?: AgentID; readonly resource_provider_id?: Id; readonly uuid: string; readonly operation_id: OperationID } }
  | { readonly type: 'RECONCILE'; readonly reconcile: { readonly tasks: readonly { readonly task_id: TaskID; readonly agent_id?: AgentID }[] } }
  | { readonly type: 'RECONCILE_OPERATIONS'; readonly reconcile_operations: { readonly operations: readonly { readonly operation_id: OperationID; readonly agent_id?: AgentID }[] } }
  | { readonly type: 'MESSAGE'; readonly message: { readonly agent_id: AgentID; readonly executor_id: ExecutorID; readonly data: string } }
  | { readonly type: 'REQUEST'; readonly request: { readonly requests: readonly unknown[] } }
  | { readonly type: 'UPDATE_FRAMEWORK'; readonly update_framework: { readonly framework_info: FrameworkInfo; readonly suppressed_roles?: readonly string[] } };

/** A call on the wire: the body plus the framework id. */
export type Call = CallBody & { readonly framework_id?: FrameworkID };
