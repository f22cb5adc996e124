/**
 * The Mesos v1 scheduler client: one long-lived SUBSCRIBE connection whose
 * RecordIO stream carries events, and one short connection per call (the calls by name are
 * SchedulerCalls', scheduler-calls.ts).
 *
 * It is an explicit state machine (after Mesos `src/scheduler/scheduler.cpp`):
 *
 *   DISCONNECTED → CONNECTING (finding the leader, opening the connection)
 *                → SUBSCRIBING (SUBSCRIBE sent, waiting for SUBSCRIBED)
 *                → SUBSCRIBED (events flow, calls allowed)
 *
 * Every connection attempt gets a number and every callback checks it, so an
 * answer from an abandoned connection can never move the current state.
 * Time (backoff, heartbeat watchdog, timeouts) is read through the Clock port.
 */
import type { IncomingMessage, ClientRequest } from 'node:http';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { LocusError, asLocusError } from '../core/errors.js';
import { DecodeError } from '../core/decode.js';
import type { Logger } from '../obs/log.js';
import { silentLogger } from '../obs/log.js';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from './backoff.js';
import { calls, interpretCallResponse, type CallResult } from './calls.js';
import { createDetector, type MasterDetector } from './detector.js';
import { decodeEventRecord } from './events.js';
import {
  connectionError, masterBase, postOnce, readCaFile, resolveRedirect, schedulerEndpoint, startPost, type Credentials, type TransportOptions,
} from './http.js';
import { RecordIoDecoder } from './recordio.js';
import { SchedulerCalls } from './scheduler-calls.js';
import type { CallBody, Event, EventType, FrameworkID, FrameworkInfo, MasterInfo } from './types.js';

/** The connection states, in order. */
export type ConnectionState = 'DISCONNECTED' | 'CONNECTING' | 'SUBSCRIBING' | 'SUBSCRIBED';

/** What the client knows once SUBSCRIBED. */
export interface SubscriptionInfo {
  readonly frameworkId: string;
  /** The master's base URL that accepted the subscription. */
  readonly master: string;
  readonly streamId: string;
  readonly heartbeatIntervalSeconds: number;
  readonly masterInfo: MasterInfo | undefined;
  /** True when the master confirmed an id the client already had (a failover). */
  readonly resubscribed: boolean;
}

/** Why a connection ended. */
export interface DisconnectInfo {
  readonly reason: string;
  readonly error: LocusError | undefined;
  readonly master: string | undefined;
  /** Whether the client will try again by itself. */
  readonly willRetry: boolean;
}

type PerTypeEvents = { [K in EventType]: [event: Extract<Event, { type: K }>] };

/** The client's typed events: lifecycle ones in lower case, each master event by its type. */
export type SchedulerClientEvents = PerTypeEvents & {
  state: [state: ConnectionState, previous: ConnectionState];
  subscribed: [info: SubscriptionInfo];
  /** Every event from the master, in order. */
  event: [event: Event];
  disconnected: [info: DisconnectInfo];
  /** A fatal error: the client stopped (authentication refused, framework removed, bad FrameworkInfo). */
  error: [error: LocusError];
  /** The client stopped (stop(), teardown() or a fatal error); it will not reconnect. */
  stopped: [];
};

/** Options of a SchedulerClient. */
export interface SchedulerClientOptions {
  /** `http(s)://host:port`, `zk://…/mesos`, or a detector the caller owns. */
  readonly master: string | MasterDetector;
  /** The framework to subscribe as (see buildFrameworkInfo). Its `id`, if any, is re-used. */
  readonly framework: FrameworkInfo;
  readonly suppressedRoles?: readonly string[];
  readonly credentials?: Credentials;
  /** PEM of a private CA, or read it from `caFile`. */
  readonly ca?: string | Buffer;
  readonly caFile?: string;
  readonly clock?: Clock;
  /** Source of jitter, injectable so tests are deterministic. */
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly backoff?: BackoffPolicy;
  /** Heartbeats that may be missed before the connection counts as dead (default 3). */
  readonly heartbeatMisses?: number;
  /** How long SUBSCRIBED may take after the request starts (default 30 s). */
  readonly subscribeTimeoutMs?: number;
  /** How long a call may take (default 30 s). */
  readonly callTimeoutMs?: number;
  /** Retries of a call answered 5xx or lost on the wire (default 3). */
  readonly callRetries?: number;
  /** Consecutive 307s followed without backoff (default 5). */
  readonly maxRedirects?: number;
  /** Called when the master assigns (or confirms a new) FrameworkID, so the app can persist it. */
  readonly onFrameworkId?: (frameworkId: string) => void | Promise<void>;
  /**
   * Asked before every SUBSCRIBE (the first and each re-subscription): false stops the client
   * for good with NOT_LEADER. A standby scheduler that took over subscribes with the same
   * FrameworkID, which makes the master drop the old leader's stream; a paused old leader that
   * wakes up must not subscribe again and take the framework back.
   */
  readonly beforeSubscribe?: () => Promise<boolean>;
}

interface Connection {
  readonly id: number;
  readonly url: URL;
  readonly decoder: RecordIoDecoder;
  req: ClientRequest | undefined;
  res: IncomingMessage | undefined;
  streamId: string | undefined;
  watchdog: TimerHandle | undefined;
}

/** Mesos' default heartbeat interval, used until SUBSCRIBED says otherwise. */
const DEFAULT_HEARTBEAT_SECONDS = 15;

/** The scheduler client. Create, attach listeners, then `start()`. */
export class SchedulerClient extends SchedulerCalls<SchedulerClientEvents> {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly transport: TransportOptions;
  private readonly detector: MasterDetector;
  private readonly ownsDetector: boolean;
  private readonly backoff: BackoffPolicy;
  private framework: FrameworkInfo;
  private suppressedRoles: readonly string[];
  private currentState: ConnectionState = 'DISCONNECTED';
  private conn: Connection | undefined;
  private connSeq = 0;
  private running = false;
  private stoppedOnce = false;
  private attempt = 0;
  private redirects = 0;
  private redirectTarget: URL | undefined;
  private retryTimer: TimerHandle | undefined;
  private detectorOff: (() => void) | undefined;
  private heartbeatSeconds = DEFAULT_HEARTBEAT_SECONDS;
  private info: SubscriptionInfo | undefined;
  private lastFailure: LocusError | undefined;
  private fatalFailure: LocusError | undefined;

  constructor(private readonly options: SchedulerClientOptions) {
    super((err, event) => this.log.error({ err, event }, 'a scheduler client listener threw'));
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silentLogger();
    const ca = options.ca ?? (options.caFile !== undefined ? readCaFile(options.caFile) : undefined);
    this.transport = { ...(options.credentials ? { credentials: options.credentials } : {}), ...(ca === undefined ? {} : { ca }) };
    if (typeof options.master === 'string') {
      const scheme = options.master.startsWith('zk://') && ca !== undefined ? 'https' : 'http';
      this.detector = createDetector(options.master, { scheme, logger: this.log });
      this.ownsDetector = true;
    } else {
      this.detector = options.master;
      this.ownsDetector = false;
    }
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.framework = options.framework;
    this.suppressedRoles = options.suppressedRoles ?? [];
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** The FrameworkID (from the FrameworkInfo given, or assigned by the master). */
  get frameworkId(): string | undefined {
    return this.framework.id?.value;
  }

  /** The current subscription, while SUBSCRIBED. */
  get subscription(): SubscriptionInfo | undefined {
    return this.currentState === 'SUBSCRIBED' ? this.info : undefined;
  }

  /** The last connection failure (for "why am I not subscribed?" messages). */
  get lastError(): LocusError | undefined {
    return this.lastFailure;
  }

  /** The error that stopped the client for good (a refused subscription), if any. */
  get fatalError(): LocusError | undefined {
    return this.fatalFailure;
  }

  /** Start connecting; the client keeps (re)subscribing until stop(). A client is started once. */
  async start(): Promise<void> {
    if (this.running) return;
    if (this.stoppedOnce) throw new LocusError('WRONG_STATE', 'a stopped SchedulerClient cannot be started again; create a new one');
    this.running = true;
    this.detectorOff = this.detector.on('leader', (url) => this.onLeaderChange(url));
    await this.detector.start();
    this.connect();
  }

  /** Resolve once SUBSCRIBED (or reject on a fatal error or after `timeoutMs` of real time). */
  waitForSubscribed(timeoutMs: number): Promise<SubscriptionInfo> {
    const now = this.subscription;
    if (now) return Promise.resolve(now);
    return new Promise<SubscriptionInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        const why = this.lastFailure ? `: ${this.lastFailure.message}` : '';
        reject(new LocusError('TIMEOUT', `not subscribed within ${timeoutMs} ms${why}`, { cause: this.lastFailure }));
      }, timeoutMs);
      const offSub = this.on('subscribed', (info) => {
        cleanup();
        resolve(info);
      });
      const offErr = this.on('error', (err) => {
        cleanup();
        reject(err);
      });
      // stop() ends the wait too, so no timer outlives the client.
      const offState = this.on('stopped', () => {
        cleanup();
        reject(this.lastFailure ?? new LocusError('NOT_READY', 'the client was stopped before it subscribed'));
      });
      const cleanup = (): void => {
        clearTimeout(timer);
        offSub();
        offErr();
        offState();
      };
    });
  }

  /** Close the subscription and stop reconnecting. Safe to call twice. */
  async stop(): Promise<void> {
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.detectorOff?.();
    this.detectorOff = undefined;
    const wasRunning = this.running || this.conn !== undefined;
    this.running = false;
    this.stoppedOnce = true;
    this.closeConnection();
    this.setState('DISCONNECTED');
    if (wasRunning) this.emit('stopped');
    if (this.ownsDetector) await this.detector.close();
  }

  // ---- connection state machine -------------------------------------------

  private setState(next: ConnectionState): void {
    const prev = this.currentState;
    if (prev === next) return;
    this.currentState = next;
    this.log.debug({ from: prev, to: next }, 'mesos connection state');
    this.emit('state', next, prev);
  }

  private gating = false;

  private connect(): void {
    const gate = this.options.beforeSubscribe;
    if (!gate) {
      this.connectNow();
      return;
    }
    if (!this.running || this.conn || this.gating) return;
    this.gating = true;
    void gate().then((ok) => ok, (err: unknown) => {
      // Unknown (Redis unreachable): not a refusal; try again after a pause.
      this.log.warn({ err: String(err) }, 'cannot check leadership before subscribing; retrying');
      return undefined;
    }).then((ok) => {
      this.gating = false;
      if (!this.running) return;
      if (ok === true) this.connectNow();
      else if (ok === undefined) this.retryTimer = this.clock.setTimer(1_000, () => { this.retryTimer = undefined; this.connect(); });
      else this.refuseToSubscribe();
    });
  }

  /** The gate said no: this scheduler is no longer the leader; stop for good. */
  private refuseToSubscribe(): void {
    const error = new LocusError('NOT_LEADER', 'not subscribing: this scheduler is no longer the leader');
    this.log.error({ err: error.message }, 'not subscribing');
    this.stopForGood(error);
  }

  /** Stop for good after `error`: no retry, no leader detection; `before` runs once the state is DISCONNECTED. */
  private stopForGood(error: LocusError, before?: () => void): void {
    this.lastFailure = error;
    this.fatalFailure = error;
    this.running = false;
    this.stoppedOnce = true;
    this.retryTimer?.cancel();
    this.detectorOff?.();
    this.detectorOff = undefined;
    this.setState('DISCONNECTED');
    before?.();
    this.emit('error', error);
    this.emit('stopped');
    if (this.ownsDetector) void this.detector.close();
  }

  private connectNow(): void {
    if (!this.running || this.conn) return;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.setState('CONNECTING');
    let url = this.redirectTarget;
    if (!url) {
      const leader = this.detector.current();
      if (leader === undefined) {
        // Stay CONNECTING; the detector's next `leader` event continues.
        this.log.info('waiting for a leading master');
        return;
      }
      url = schedulerEndpoint(leader);
    }
    const frameworkInfo = this.framework;
    const subscribe = calls.subscribe(frameworkInfo, this.suppressedRoles);
    // A re-subscription names the framework both in the call and in its info; masters check they agree.
    const body = JSON.stringify(frameworkInfo.id ? { framework_id: frameworkInfo.id, ...subscribe } : subscribe);
    const conn: Connection = { id: ++this.connSeq, url, decoder: new RecordIoDecoder(), req: undefined, res: undefined, streamId: undefined, watchdog: undefined };
    this.conn = conn;
    this.log.info({ master: masterBase(url), frameworkId: frameworkInfo.id?.value, attempt: this.attempt }, 'subscribing');
    this.armWatchdog(conn, this.options.subscribeTimeoutMs ?? 30_000, 'no SUBSCRIBED event in time');
    let req: ClientRequest;
    try {
      req = startPost(url, this.transport, body);
    } catch (err) {
      this.connectionFailed(conn, `cannot start a request to ${masterBase(url)}`, connectionError(url, err));
      return;
    }
    conn.req = req;
    req.on('socket', (socket) => {
      const opened = (): void => {
        if (this.conn === conn && this.currentState === 'CONNECTING') this.setState('SUBSCRIBING');
      };
      if (socket.connecting) socket.once('connect', opened);
      else opened();
    });
    req.on('error', (err) => this.connectionFailed(conn, 'connection error', connectionError(url, err)));
    req.on('response', (res) => this.onSubscribeResponse(conn, res));
  }

  private onSubscribeResponse(conn: Connection, res: IncomingMessage): void {
    if (this.conn !== conn) {
      res.destroy();
      return;
    }
    conn.res = res;
    const status = res.statusCode ?? 0;
    if (status === 200) {
      const type = String(res.headers['content-type'] ?? '');
      const streamId = res.headers['mesos-stream-id'];
      if (!/application\/(json|recordio)/.test(type)) {
        res.destroy();
        this.connectionFailed(conn, 'garbage answer', new LocusError('PROTOCOL', `${masterBase(conn.url)} is not a Mesos master: SUBSCRIBE answered 200 with content-type '${type || 'none'}'`));
        return;
      }
      if (typeof streamId !== 'string' || streamId === '') {
        res.destroy();
        this.connectionFailed(conn, 'garbage answer', new LocusError('PROTOCOL', `${masterBase(conn.url)} answered SUBSCRIBE without a Mesos-Stream-Id`));
        return;
      }
      conn.streamId = streamId;
      if (this.currentState === 'CONNECTING') this.setState('SUBSCRIBING');
      res.on('data', (chunk: Buffer) => this.onStreamData(conn, chunk));
      res.on('error', (err) => this.connectionFailed(conn, 'stream error', connectionError(conn.url, err)));
      res.on('end', () => this.connectionFailed(conn, 'the master closed the event stream', new LocusError('UNAVAILABLE', `${masterBase(conn.url)} closed the event stream`)));
      res.on('close', () => this.connectionFailed(conn, 'the event stream closed', new LocusError('UNAVAILABLE', `${masterBase(conn.url)} closed the event stream`)));
      return;
    }
    // Any other status: read the (short) body for the master's message first.
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => {
      if (chunks.length < 64) chunks.push(c);
    });
    res.on('error', (err) => this.connectionFailed(conn, 'connection error', connectionError(conn.url, err)));
    res.on('end', () => this.onSubscribeRejected(conn, status, Buffer.concat(chunks).toString('utf8'), res.headers['location']));
  }

  private onSubscribeRejected(conn: Connection, status: number, body: string, location: string | undefined): void {
    if (this.conn !== conn) return;
    const outcome = interpretCallResponse('SUBSCRIBE', status, body, location);
    if (outcome.kind === 'redirect') {
      if (location === undefined || location === '') {
        this.connectionFailed(conn, 'redirect without Location', new LocusError('PROTOCOL', `${masterBase(conn.url)} answered 307 without a Location`));
        return;
      }
      const target = resolveRedirect(location, conn.url);
      this.redirects++;
      const limit = this.options.maxRedirects ?? 5;
      this.log.info({ from: masterBase(conn.url), to: masterBase(target) }, 'not the leading master; following 307');
      this.closeConnection();
      this.redirectTarget = target;
      if (this.redirects > limit) {
        // A redirect loop (two masters naming each other): slow down.
        this.redirects = 0;
        this.scheduleReconnect(`more than ${limit} redirects in a row`, new LocusError('UNAVAILABLE', `redirect loop while looking for the leading master (last: ${masterBase(target)})`), masterBase(conn.url));
        return;
      }
      this.setState('DISCONNECTED');
      this.connect();
      return;
    }
    if (outcome.kind === 'retry') {
      this.connectionFailed(conn, outcome.reason, new LocusError(status === 503 ? 'NOT_READY' : 'UNAVAILABLE', `${masterBase(conn.url)}: ${outcome.reason}`));
      return;
    }
    if (outcome.kind === 'fail') {
      // Refused credentials or a FrameworkInfo the master rejects will not get better by retrying.
      const err = new LocusError(outcome.error.code, `${masterBase(conn.url)}: ${outcome.error.message}`, { details: outcome.error.details ?? {} });
      this.fatal(conn, err);
      return;
    }
    this.connectionFailed(conn, 'unexpected answer', new LocusError('PROTOCOL', `${masterBase(conn.url)} answered SUBSCRIBE with ${status}`));
  }

  private onStreamData(conn: Connection, chunk: Buffer): void {
    if (this.conn !== conn) return;
    let records: Buffer[];
    try {
      records = conn.decoder.decode(chunk);
    } catch (err) {
      this.connectionFailed(conn, 'malformed event stream', asLocusError(err));
      return;
    }
    for (const record of records) {
      // A listener may have stopped the client or moved it on.
      if (this.conn !== conn) return;
      let event: Event;
      try {
        event = decodeEventRecord(record);
      } catch (err) {
        if (err instanceof DecodeError && !err.message.includes('invalid JSON')) {
          // The framing is intact; one event a newer master shaped differently is skipped, not fatal.
          this.log.warn({ err: err.message }, 'skipping an event that could not be decoded');
          continue;
        }
        this.connectionFailed(conn, 'garbage on the event stream', new LocusError('PROTOCOL', `${masterBase(conn.url)} sent an event that is not JSON: ${(err as Error).message}`));
        return;
      }
      this.onEvent(conn, event);
    }
  }

  private onEvent(conn: Connection, event: Event): void {
    if (event.type === 'SUBSCRIBED') {
      this.onSubscribed(conn, event.subscribed);
    } else if (event.type === 'ERROR' && this.currentState !== 'SUBSCRIBED') {
      // A genuine master refuses a subscription (framework removed, failover timeout passed,
      // principal changed, role not authorized) with 200, one ERROR event and the end of the
      // stream. Retrying cannot succeed, and the master's message is the only explanation.
      this.emit('event', event);
      this.emitTyped(event);
      this.fatal(conn, new LocusError('CONFLICT', `the master refused the subscription: ${event.error.message}`));
      return;
    } else if (this.currentState !== 'SUBSCRIBED') {
      this.log.warn({ type: event.type }, 'event before SUBSCRIBED ignored');
      return;
    }
    this.armWatchdog(conn, this.heartbeatSeconds * 1000 * (this.options.heartbeatMisses ?? 3), 'missed heartbeats');
    this.emit('event', event);
    this.emitTyped(event);
    if (event.type === 'ERROR' && this.conn === conn) {
      this.fatal(conn, new LocusError('CONFLICT', `the master sent ERROR: ${event.error.message}`));
    }
  }

  private emitTyped<K extends EventType>(event: Extract<Event, { type: K }>): void {
    // The event map keys each type to its own variant, which the compiler cannot
    // relate through a generic `K`; the cast only widens to the map's own tuple.
    (this.emit as (k: K, e: Extract<Event, { type: K }>) => void)(event.type as K, event);
  }

  private onSubscribed(conn: Connection, s: Extract<Event, { type: 'SUBSCRIBED' }>['subscribed']): void {
    const id = s.framework_id.value;
    const previous = this.framework.id?.value;
    this.framework = { ...this.framework, id: { value: id } };
    this.heartbeatSeconds = s.heartbeat_interval_seconds ?? DEFAULT_HEARTBEAT_SECONDS;
    this.attempt = 0;
    this.redirects = 0;
    this.lastFailure = undefined;
    this.info = {
      frameworkId: id,
      master: masterBase(conn.url),
      streamId: conn.streamId ?? '',
      heartbeatIntervalSeconds: this.heartbeatSeconds,
      masterInfo: s.master_info,
      resubscribed: previous === id,
    };
    this.setState('SUBSCRIBED');
    this.log.info({ frameworkId: id, master: this.info.master, resubscribed: this.info.resubscribed }, 'subscribed');
    if (previous !== id && this.options.onFrameworkId) {
      Promise.resolve()
        .then(() => this.options.onFrameworkId?.(id))
        .catch((err: unknown) => this.log.error({ err }, 'onFrameworkId failed; the FrameworkID may not be persisted'));
    }
    this.emit('subscribed', this.info);
  }

  private armWatchdog(conn: Connection, ms: number, reason: string): void {
    conn.watchdog?.cancel();
    conn.watchdog = this.clock.setTimer(ms, () => {
      if (this.conn !== conn) return;
      this.log.warn({ master: masterBase(conn.url), ms }, reason);
      this.connectionFailed(conn, reason, new LocusError('TIMEOUT', `${reason}: nothing from ${masterBase(conn.url)} for ${ms} ms`));
    });
  }

  private closeConnection(): void {
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    conn.watchdog?.cancel();
    conn.res?.destroy();
    conn.req?.destroy();
  }

  /** The current connection failed; retry with backoff unless stopped. */
  private connectionFailed(conn: Connection, reason: string, error: LocusError): void {
    if (this.conn !== conn) return;
    const master = masterBase(conn.url);
    const wasSubscribed = this.currentState === 'SUBSCRIBED';
    this.closeConnection();
    // After a failure, ask the detector again instead of insisting on a redirect target.
    this.redirectTarget = undefined;
    if (wasSubscribed) this.attempt = 0;
    this.scheduleReconnect(reason, error, master);
  }

  private scheduleReconnect(reason: string, error: LocusError, master: string | undefined): void {
    this.lastFailure = error;
    this.setState('DISCONNECTED');
    this.emit('disconnected', { reason, error, master, willRetry: this.running });
    if (!this.running) return;
    this.attempt++;
    const delay = backoffDelay(this.attempt, this.backoff, this.random);
    this.log.warn({ reason, err: error.message, master, retryInMs: delay, attempt: this.attempt }, 'mesos connection lost; will retry');
    this.retryTimer?.cancel();
    this.retryTimer = this.clock.setTimer(delay, () => {
      this.retryTimer = undefined;
      this.connect();
    });
  }

  private fatal(conn: Connection, error: LocusError): void {
    if (this.conn !== conn) return;
    this.log.error({ err: error.message }, 'mesos subscription failed for good');
    const master = masterBase(conn.url);
    this.closeConnection();
    this.stopForGood(error, () => this.emit('disconnected', { reason: error.message, error, master, willRetry: false }));
  }

  private onLeaderChange(url: string | undefined): void {
    if (!this.running) return;
    this.log.info({ leader: url }, 'leading master changed');
    const conn = this.conn;
    if (conn && url !== undefined && masterBase(conn.url) === masterBase(schedulerEndpoint(url))) return;
    this.redirectTarget = undefined;
    if (conn) {
      const wasSubscribed = this.currentState === 'SUBSCRIBED';
      this.closeConnection();
      this.attempt = 0;
      this.setState('DISCONNECTED');
      this.emit('disconnected', { reason: 'the leading master changed', error: undefined, master: masterBase(conn.url), willRetry: true });
      if (wasSubscribed || url !== undefined) this.connect();
      return;
    }
    if (this.currentState === 'CONNECTING' || this.currentState === 'DISCONNECTED') {
      // Waiting for a leader or backing off: a new leader is worth trying now.
      this.retryTimer?.cancel();
      this.retryTimer = undefined;
      this.connect();
    }
  }

  // ---- calls ----------------------------------------------------------------

  /**
   * Send one call on its own connection with the stream id. Fails with
   * WRONG_STATE unless SUBSCRIBED; 4xx fail with the master's message; 5xx
   * and connection errors are retried with backoff while the subscription lasts.
   */
  async call(body: CallBody): Promise<CallResult> {
    const conn = this.conn;
    if (this.currentState !== 'SUBSCRIBED' || !conn || conn.streamId === undefined) {
      throw new LocusError('WRONG_STATE', `cannot send ${body.type}: the client is ${this.currentState}, not SUBSCRIBED`, { details: { state: this.currentState, call: body.type } });
    }
    const frameworkId = this.framework.id;
    const payload = JSON.stringify(frameworkId ? { framework_id: frameworkId, ...body } : body);
    const retries = this.options.callRetries ?? 3;
    let lastError: LocusError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        await this.sleep(backoffDelay(attempt, { initialMs: Math.min(this.backoff.initialMs, 1000), maxMs: Math.min(this.backoff.maxMs, 10_000) }, this.random));
      }
      if (this.conn !== conn || this.currentState !== 'SUBSCRIBED' || conn.streamId === undefined) {
        throw new LocusError('NOT_READY', `${body.type} not sent: the subscription was lost${lastError ? ` (${lastError.message})` : ''}`, { cause: lastError });
      }
      let answer;
      try {
        answer = await postOnce(conn.url, this.transport, payload, conn.streamId, this.options.callTimeoutMs ?? 30_000, this.clock);
      } catch (err) {
        lastError = asLocusError(err);
        this.log.warn({ call: body.type, err: lastError.message, attempt }, 'call failed; retrying');
        continue;
      }
      const location = answer.headers['location'];
      const outcome = interpretCallResponse(body.type, answer.status, answer.body, typeof location === 'string' ? location : undefined);
      if (outcome.kind === 'ok') return outcome.result;
      if (outcome.kind === 'fail') throw outcome.error;
      if (outcome.kind === 'redirect') {
        // The master we are subscribed to lost leadership: re-subscribe at the leader.
        if (this.conn === conn && outcome.location) {
          const target = resolveRedirect(outcome.location, conn.url);
          this.closeConnection();
          this.redirectTarget = target;
          this.attempt = 0;
          this.setState('DISCONNECTED');
          this.emit('disconnected', { reason: 'the master is no longer the leader', error: undefined, master: masterBase(conn.url), willRetry: this.running });
          this.connect();
        }
        throw new LocusError('NOT_READY', `${body.type} not sent: ${masterBase(conn.url)} is no longer the leading master`);
      }
      lastError = new LocusError('UNAVAILABLE', `${body.type}: ${outcome.reason}`);
      this.log.warn({ call: body.type, reason: outcome.reason, attempt }, 'call not accepted yet; retrying');
    }
    throw lastError ?? new LocusError('UNAVAILABLE', `${body.type} failed`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(ms, resolve));
  }

  /** UPDATE_FRAMEWORK; the new info is also what later re-subscriptions send. */
  async updateFramework(framework: FrameworkInfo, suppressedRoles?: readonly string[]): Promise<CallResult> {
    const info: FrameworkInfo = this.framework.id ? { ...framework, id: this.framework.id } : framework;
    const result = await this.call(calls.updateFramework(info, suppressedRoles));
    this.framework = info;
    if (suppressedRoles) this.suppressedRoles = suppressedRoles;
    return result;
  }

  /** TEARDOWN the framework (all its tasks die), then stop the client. */
  async teardown(): Promise<CallResult> {
    try {
      return await this.call(calls.teardown());
    } finally {
      await this.stop();
    }
  }
}

/** A FrameworkID as a string, for logs and storage. */
export function frameworkIdValue(id: FrameworkID | undefined): string | undefined {
  return id?.value;
}
