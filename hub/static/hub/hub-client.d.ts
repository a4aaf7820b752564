/**
 * Type declarations for hub-client.js (the hub's JavaScript client; docs/protocol.md).
 * Kept beside the module so `import { connect } from ".../hub-client.js"` is typed in
 * TypeScript projects; tests/js checks every export named here exists in the module.
 */

export type ConnectionState =
  | "idle" | "connecting" | "open" | "connected" | "reconnecting" | "closed";

/** A publication on a channel (docs/protocol.md section 3). */
export interface Publication<D = unknown> {
  type: string;
  channel: string;
  offset: number;
  timestamp: string;
  data: D;
}

/** Any server frame: publications and control frames. */
export interface ServerFrame {
  type: string;
  id?: string | number;
  [key: string]: unknown;
}

export interface HubError {
  type?: "error";
  code: string;
  message: string;
  channel?: string;
  id?: string | number;
}

export interface ClientOptions {
  /** ms: every reconnect waits at least this. Default 250. */
  minDelay?: number;
  /** ms: the first reconnect waits up to this (full jitter); doubles per failed attempt, but
   *  never beyond how long the connection has been down. Default 1000. */
  baseDelay?: number;
  /** ms: cap of the exponential backoff. Default 30000. */
  maxDelay?: number;
  /** A token (DRF or JWT), or a function returning one, sent as a first `auth` frame. */
  token?: string | (() => string) | null;
  reconnect?: boolean;
  reconnectOnAuthFailure?: boolean;
  /** Heartbeat intervals of silence before the socket is declared dead. Default 2.5. */
  heartbeatGrace?: number;
  /** Frames queued while not connected. Default 1000. */
  maxQueue?: number;
  /** ms, for request(). Default 10000. */
  requestTimeout?: number;
  /** Injectable environment (tests, non-browser runtimes). */
  WebSocket?: unknown;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  random?: () => number;
  now?: () => number;
  location?: { href: string; protocol: string; host: string };
}

export interface StateEvent {
  state: ConnectionState;
  code?: number;
  reason?: string;
  willReconnect?: boolean;
  [key: string]: unknown;
}

export interface ResetEvent {
  channel: string;
  reason: string;
  recovered: false;
}

export interface ChannelPosition {
  name: string;
  offset: number | null;
  epoch: string | null;
  subscribed: boolean;
}

export interface EventMap {
  state: StateEvent;
  connected: ServerFrame;
  reset: ResetEvent;
  subscribed: ServerFrame & { channel: string; offset: number; epoch: string; initial: boolean };
  unsubscribed: ServerFrame;
  recovered: ServerFrame & { channel: string; recovered: boolean; missed?: number };
  publication: Publication;
  message: ServerFrame;
  heartbeat: ServerFrame;
  error: HubError;
  auth_failed: { code: number; reason: string };
  [other: string]: unknown;
}

export class HubClient {
  constructor(options?: ClientOptions);
  readonly options: Required<Omit<ClientOptions, "WebSocket" | "setTimeout" | "clearTimeout" | "random" | "now" | "location">>;
  url: string | null;
  state: ConnectionState;
  clientId: string | null;
  user: string | null;
  server: string | null;
  heartbeatInterval: number | null;
  readonly connected: boolean;

  /** Open the connection (idempotent): "/ws/", "ws://host:port/", "https://host/ws/". */
  connect(url?: string): this;
  /** Close for good: no reconnect until connect() is called again. */
  close(code?: number, reason?: string): this;
  disconnect(): this;
  /** Skip the backoff wait (a "reconnect now" button, the browser back online). */
  reconnectNow(): void;

  on<K extends keyof EventMap>(type: K, fn: (payload: EventMap[K]) => void): () => void;
  once<K extends keyof EventMap>(type: K, fn: (payload: EventMap[K]) => void): () => void;
  off<K extends keyof EventMap>(type: K, fn: (payload: EventMap[K]) => void): void;
  /** Call the listeners of `type` (the client's own events; listener errors are swallowed). */
  emit(type: string, payload?: unknown): void;

  /** Send one frame; queued until `connected`; false if dropped. */
  send(frame: { type: string; [key: string]: unknown }): boolean;
  /** Send a frame with an `id`; resolves with the reply that echoes it, rejects on `error`. */
  request<R = ServerFrame>(frame: { type: string; [key: string]: unknown },
                           options?: { timeout?: number }): Promise<R>;
  ping(): Promise<ServerFrame>;
  /** Publish where the channel's policy lets this user (docs/protocol.md section 4). */
  publish(channel: string, data: unknown, event?: string): Promise<ServerFrame & { offset: number }>;

  /** Call `callback` for each publication on `channel`, recovering after reconnects.
   *  `since`: resume a new subscription after a REST snapshot's `position[channel]`
   *  (`{offset, epoch}`), or after an offset given as a number with `epoch`. */
  subscribe<D = unknown>(channel: string, callback?: (msg: Publication<D>) => void,
                         options?: { since?: { offset: number; epoch?: string | null } | number | null;
                                     epoch?: string | null }): () => void;
  unsubscribe(channel: string, callback?: (msg: Publication) => void): void;
  channels(): ChannelPosition[];
}

export const DEFAULTS: Readonly<Required<Pick<ClientOptions,
  "minDelay" | "baseDelay" | "maxDelay" | "reconnect" | "reconnectOnAuthFailure" | "heartbeatGrace" |
  "maxQueue" | "requestTimeout">> & { token: null }>;

/**
 * Full-jitter backoff above a floor: a random delay in [minDelay, ceiling), ceiling =
 * min(maxDelay, baseDelay * 2^attempt, max(baseDelay, downFor)); downFor: ms down so far.
 */
export function backoffDelay(attempt: number,
                             options?: { minDelay?: number; baseDelay?: number; maxDelay?: number;
                                         downFor?: number; random?: () => number }): number;

/** The WebSocket URL for `url` (ws/wss pass through, http(s) become ws(s), paths resolve). */
export function resolveUrl(url?: string | null, location?: { href: string }): string;

/** Create a client and connect it. */
export function connect(url?: string, options?: ClientOptions): HubClient;

declare const _default: {
  connect: typeof connect;
  HubClient: typeof HubClient;
  backoffDelay: typeof backoffDelay;
  resolveUrl: typeof resolveUrl;
};
export default _default;
