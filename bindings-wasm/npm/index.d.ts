/** Rule codes of `ReproLineError`. */
export type ReproLineErrorCode =
  | 'invalid_line_user_id'
  | 'invalid_id_token'
  | 'invalid_user_id'
  | 'invalid_channel_id'
  | 'missing_channel_id'
  | 'user_id_not_set'
  | 'invalid_config'
  | 'insecure_endpoint'
  | 'storage'
  | 'shut_down'
  | 'internal'
  | 'unknown_command'
  | 'not_set_up';

/** Thrown synchronously by a call whose argument or configuration breaks a rule; the message states the rule. */
export class ReproLineError extends Error {
  readonly name: 'ReproLineError';
  readonly code: ReproLineErrorCode;
  constructor(code: ReproLineErrorCode, message: string);
}

export interface ReproLineOptions {
  /** The Repro SDK token (sent as `X-Repro-Token`). */
  sdkToken: string;
  /** Base URL of the ingestion endpoint; `https` unless the host is loopback. */
  endpoint: string;
  /** LINE channel used when a call passes none. */
  defaultChannelId?: string;
  /** `"local"` (default): the queue survives reloads in localStorage. `"memory"`: this page only. */
  storage?: 'local' | 'memory';
  /** Hard ceiling of the journal in localStorage (default 524288); above it the queue stays in memory. */
  storageBudgetBytes?: number;
  /** Per-request timeout (default 30000). */
  requestTimeoutMs?: number;
  /** How long the first call of a burst waits for company (default 200). */
  debounceMs?: number;
  /** Ops per request, 1..100 (default 100). */
  maxBatchOps?: number;
  /** Queue bound after coalescing (default 1000); the oldest op not in flight is dropped beyond it. */
  maxQueueOps?: number;
  /** Undelivered calls older than this are dropped, reported `expired` (default 7 days). */
  maxOpAgeMs?: number;
}

export type OpKind = 'set_user_id' | 'link_line_id' | 'unlink_line_id' | 'link_line_id_token';

/** The final outcome of one call. */
export interface OpReport {
  type: 'op';
  opId: string;
  seq: number;
  kind: OpKind;
  userId: string;
  /** `link_line_id_token`: the token's `sub` (the token itself is never reported). */
  lineUserId?: string;
  channelId?: string;
  status: 'delivered' | 'duplicate' | 'rejected' | 'dropped';
  /** `rejected`: protocol code 1002–1008, or the HTTP status of another 4xx. */
  code?: number;
  message?: string;
  /** `dropped`. */
  reason?: 'queue_full' | 'expired' | 'malformed_batch' | 'payload_too_large' | 'opted_out';
}

/** Delivery paused (until a new token or a reload) or resumed. */
export interface StateReport {
  type: 'state';
  state: 'paused' | 'resumed';
  reason?: 'auth_failed' | 'endpoint_misconfigured';
}

export type DeliveryEvent = OpReport | StateReport;

/** Where the queue lives, or a warning; never thrown into the page. */
export interface StorageState {
  type: 'storage' | 'warning';
  /** `storage`: true when the queue is in localStorage again, false when it fell back to memory. */
  persistent?: boolean;
  leader: boolean;
  reason?: string;
}

export interface FlushResult {
  /** Every call was reported. */
  drained: boolean;
  pending: number;
  paused: 'auth_failed' | 'endpoint_misconfigured' | null;
}

export class ReproLine {
  static setup(options: ReproLineOptions): ReproLine;
  constructor(options: ReproLineOptions);
  setUserId(userId: string): void;
  setUserID(userId: string): void;
  setLineUserId(lineUserId: string, channelId?: string): void;
  /** Unverified: the page claims the LINE user ID (trusted server-side use). Prefer `linkLineIDToken`. */
  linkLineID(lineUserId: string, channelId?: string): void;
  /** Verified: links the `sub` of a LINE ID token (`liff.getIDToken()`); the token is never logged. */
  linkLineIDToken(idToken: string, channelId?: string): void;
  unlinkLineUserId(lineUserId: string, channelId?: string): void;
  unlinkLineID(lineUserId: string, channelId?: string): void;
  optIn(optedIn?: boolean): void;
  optOut(): void;
  /** Never rejects. */
  flush(timeoutMs?: number): Promise<FlushResult>;
  onDelivery(cb: (event: DeliveryEvent) => void): () => void;
  onState(cb: (state: StorageState) => void): () => void;
  setSdkToken(token: string): void;
  readonly deviceId: string;
  readonly userId: string | undefined;
  readonly optedIn: boolean;
  readonly pendingOps: number;
  readonly isLeader: boolean;
  readonly persistent: boolean;
  readonly requestsSent: number;
  shutdown(): void;
}

export type ReproLineCommand =
  | ['setup', ReproLineOptions]
  | ['setup', string, Omit<ReproLineOptions, 'sdkToken'>]
  | ['setUserID' | 'setUserId', string]
  | ['linkLineID' | 'setLineUserId' | 'unlinkLineID' | 'unlinkLineUserId', string, string?]
  | ['linkLineIDToken', string, string?]
  | ['optIn', boolean?]
  | ['optOut']
  | ['flush', number?]
  | ['onDelivery', (event: DeliveryEvent) => void]
  | ['onState', (state: StorageState) => void]
  | ['setSdkToken', string];

/** Command API; `setup` must come first. The snippet's global `window.reproline`. */
export function reproline(...command: ReproLineCommand): unknown;

/** `reproline` under Repro-style naming (an import only; no global is touched). */
export function reproio(...command: ReproLineCommand): unknown;

/** @deprecated use ReproLineCommand */
export type ReproioCommand = ReproLineCommand;

export default ReproLine;
