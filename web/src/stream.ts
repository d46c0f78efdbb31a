// The live usage stream, GET /api/v2/usage/stream: fetch() with the key in a header
// (never in the URL), the body parsed by sse.ts. When it ends or fails it reconnects
// after the server's `retry:` delay with Last-Event-ID (doubled while attempts keep
// failing); meanwhile the poller carries on. Closed while the tab is hidden.
import { ApiError } from './api';
import type { Client, StreamUsage } from './api';
import { SseParser } from './sse';

export type StreamState = 'live' | 'polling';

export interface StreamHooks {
  /** A usage event: every meter when `full`, else the ones that changed. */
  usage(e: StreamUsage): void;
  /** Live: the stream is open; polling: it is not (`why` says so in words). */
  state(s: StreamState, why: string): void;
  /** The key was refused: sign out. */
  unauthorized(message: string): void;
}

const PATH = '/api/v2/usage/stream';
/** Until the server's `retry:` line says otherwise. */
const DEFAULT_RETRY_MS = 2_000;
/** Failed attempts in a row double the delay, up to this. */
const LONGEST_RETRY_MS = 60_000;
/** The tenant's streams are all taken (429 too_many_streams, other tabs): ask again this late. */
const BUSY_RETRY_MS = 60_000;
/** The server sends a heartbeat every 15 s: this long with no byte, the connection is dead. */
const SILENCE_MS = 45_000;
/** A stream that ends sooner than this counts as a failed attempt. */
const SHORT_LIVED_MS = 10_000;

export class UsageStream {
  /** The open attempt's controller; null when none is open. */
  private abort: AbortController | null = null;
  private timer = 0;
  private watchdog = 0;
  private lastId = '';
  private retryMs = DEFAULT_RETRY_MS;
  private failures = 0;
  private stopped = false;
  private state: StreamState | null = null;

  constructor(
    private readonly client: Client,
    private readonly hooks: StreamHooks,
  ) {
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  start(): void {
    if (document.visibilityState === 'hidden') this.setState('polling', 'The tab is hidden.');
    else void this.connect();
  }

  /** Closes the stream for good (sign-out, or leaving a tenant's view). */
  stop(): void {
    this.stopped = true;
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.close();
  }

  private close(): void {
    window.clearTimeout(this.timer);
    window.clearTimeout(this.watchdog);
    const open = this.abort;
    this.abort = null; // before abort(): connect() then knows it was closed on purpose
    open?.abort();
  }

  private readonly onVisibility = (): void => {
    if (this.stopped) return;
    this.close();
    this.setState('polling', 'The tab is hidden.');
    if (document.visibilityState === 'visible') void this.connect();
  };

  private setState(s: StreamState, why: string): void {
    if (s === this.state) return;
    this.state = s;
    this.hooks.state(s, why);
  }

  private async connect(): Promise<void> {
    const ctrl = new AbortController();
    this.abort = ctrl;
    let delay: number;
    let why: string;
    try {
      const res = await this.client.stream(PATH, this.lastId, ctrl.signal);
      if (!res.body) throw new Error('The stream has no body.');
      const opened = Date.now();
      this.setState('live', '');
      await this.read(res.body, ctrl);
      this.failures = Date.now() - opened < SHORT_LIVED_MS ? this.failures + 1 : 0;
      delay = this.backoff();
      why = 'The live stream ended; reconnecting.';
    } catch (e) {
      if (this.abort !== ctrl || this.stopped) return;
      if (e instanceof ApiError && e.status === 401) {
        this.stop();
        this.hooks.unauthorized(e.message);
        return;
      }
      if (e instanceof ApiError && e.code === 'too_many_streams') {
        delay = BUSY_RETRY_MS;
        why = 'Other tabs hold all of this tenant’s live streams.';
      } else if (e instanceof ApiError && e.status === 429) {
        delay = Math.max(1, e.retryAfter) * 1000;
        why = 'Rate limited.';
      } else {
        this.failures += 1;
        delay = this.backoff();
        why = 'The live stream is unavailable.';
      }
    }
    if (this.abort !== ctrl || this.stopped) return;
    this.abort = null;
    this.setState('polling', why);
    this.timer = window.setTimeout(() => void this.connect(), delay);
  }

  /** The server's retry delay, doubled per failed attempt in a row. */
  private backoff(): number {
    return Math.min(LONGEST_RETRY_MS, this.retryMs * 2 ** Math.min(this.failures, 10));
  }

  /** Reads the body to its end; a silence past SILENCE_MS aborts it (a rejection). */
  private async read(body: ReadableStream<Uint8Array>, ctrl: AbortController): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser((e) => {
      if (e.type !== 'usage') return;
      let data: StreamUsage;
      try {
        data = JSON.parse(e.data) as StreamUsage;
      } catch {
        return; // not JSON: skipped, the next event or poll brings the state
      }
      if (data && typeof data.meters === 'object') this.hooks.usage(data);
    }, this.lastId);
    const awake = (): void => {
      window.clearTimeout(this.watchdog);
      this.watchdog = window.setTimeout(() => ctrl.abort(), SILENCE_MS);
    };
    awake();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        awake();
        parser.feed(decoder.decode(value, { stream: true }));
        this.lastId = parser.lastEventId;
        if (parser.retryMs !== null) this.retryMs = parser.retryMs;
      }
    } finally {
      window.clearTimeout(this.watchdog);
    }
  }
}
