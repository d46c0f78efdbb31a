// Two loops on timers (never overlapping themselves): usage/current at the
// budget's interval, the panels every PANEL_PERIOD_MS. Both pause while the
// tab is hidden and after a 429 until its Retry-After has passed.
import { ApiError, Client } from './api';
import { backedOffMs, PANEL_PERIOD_MS, usageIntervalMs } from './budget';

export interface PollerHooks {
  usage(): Promise<void>;
  panels(): Promise<void>;
  /** A failure worth showing (null: the last read succeeded). */
  problem(message: string | null): void;
  /** The key was refused: sign out. */
  unauthorized(message: string): void;
  /** The interval in force changed. */
  interval(ms: number): void;
}

export class Poller {
  private usageTimer = 0;
  private panelsTimer = 0;
  private pausedUntil = 0;
  private stopped = false;
  private lastInterval = 0;

  constructor(
    private readonly client: Client,
    private readonly hooks: PollerHooks,
  ) {
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /** Starts both loops; `usageJustRead`: the first usage read waits one interval. */
  start(usageJustRead = false): void {
    if (usageJustRead) this.schedule();
    else void this.runUsage();
    void this.runPanels();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.usageTimer);
    window.clearTimeout(this.panelsTimer);
    document.removeEventListener('visibilitychange', this.onVisibility);
  }

  /** Reads the panels now (the refresh button) and restarts their period. */
  refreshPanels(): void {
    window.clearTimeout(this.panelsTimer);
    void this.runPanels();
  }

  private readonly onVisibility = (): void => {
    if (this.stopped) return;
    window.clearTimeout(this.usageTimer);
    window.clearTimeout(this.panelsTimer);
    if (document.visibilityState === 'visible') this.start();
  };

  private waitMs(): number {
    return Math.max(0, this.pausedUntil - Date.now());
  }

  private async guarded(read: () => Promise<void>): Promise<void> {
    try {
      await read();
      this.hooks.problem(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        this.stop();
        this.hooks.unauthorized(e.message);
        return;
      }
      if (e instanceof ApiError && e.status === 429) {
        this.pausedUntil = Date.now() + Math.max(1, e.retryAfter) * 1000;
        this.hooks.problem(`Rate limited: the dashboard waits ${Math.max(1, e.retryAfter)} s.`);
        return;
      }
      this.hooks.problem(e instanceof Error ? e.message : 'The server could not be reached.');
    }
  }

  private async runUsage(): Promise<void> {
    if (this.stopped || document.visibilityState === 'hidden') return;
    if (this.waitMs() === 0) await this.guarded(this.hooks.usage);
    if (!this.stopped) this.schedule();
  }

  /** The next usage read, at the budget's interval (backed off when the rule runs low). */
  private schedule(): void {
    const rule = this.client.general;
    let ms = usageIntervalMs(rule);
    if (rule) ms = backedOffMs(ms, rule.remaining, rule.limit);
    if (ms !== this.lastInterval) {
      this.lastInterval = ms;
      this.hooks.interval(ms);
    }
    this.usageTimer = window.setTimeout(() => void this.runUsage(), Math.max(ms, this.waitMs()));
  }

  private async runPanels(): Promise<void> {
    if (this.stopped || document.visibilityState === 'hidden') return;
    if (this.waitMs() === 0) await this.guarded(this.hooks.panels);
    if (this.stopped) return;
    this.panelsTimer = window.setTimeout(
      () => void this.runPanels(),
      Math.max(PANEL_PERIOD_MS, this.waitMs()),
    );
  }
}
