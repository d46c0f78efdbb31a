// The usage the page shows, from two sources: usage/current's polls (every field) and
// the stream's pushes (the meters that changed). Per meter, a push wins over a poll
// sent before the push arrived (that poll may have been read before the change); a poll
// sent after it wins (it is newer). So neither source can draw an older value over a
// newer one.
import type { CurrentUsage, StreamUsage } from './api';

export class UsageState {
  private current: CurrentUsage | null = null;
  /** Per meter: when its last push arrived (this.now's clock). */
  private pushedAt = new Map<string, number>();

  constructor(readonly now: () => number = () => performance.now()) {}

  /** A poll's answer; `sentAt`: when its request was sent (this.now's clock). */
  fromPoll(u: CurrentUsage, sentAt: number): CurrentUsage {
    const meters = { ...u.meters };
    const shown = this.current?.meters ?? {};
    for (const [name, at] of this.pushedAt) {
      if (at > sentAt && shown[name]) meters[name] = shown[name];
    }
    this.current = { ...u, meters };
    return this.current;
  }

  /**
   * A push merged into the last state; null when there is none yet, or it is another
   * tenant's. `reshaped`: it changed the plan, the period or a limit, which the poll's
   * other fields (forecast, add-ons, pending plan) depend on: worth a poll at once.
   */
  fromStream(e: StreamUsage): { usage: CurrentUsage; reshaped: boolean } | null {
    const u = this.current;
    if (!u || (e.tenant_id !== undefined && e.tenant_id !== u.tenant_id)) return null;
    const reshaped =
      (e.plan !== undefined && e.plan !== u.plan) ||
      (e.period_start !== undefined && e.period_start !== u.period_start) ||
      Object.entries(e.meters).some(([name, m]) => u.meters[name] !== undefined && m.limit !== u.meters[name].limit);
    const at = this.now();
    for (const name of Object.keys(e.meters)) this.pushedAt.set(name, at);
    this.current = {
      ...u,
      plan: e.plan ?? u.plan,
      period: e.period ?? u.period,
      period_start: e.period_start ?? u.period_start,
      period_end: e.period_end ?? u.period_end,
      source: e.source ?? u.source,
      meters: { ...u.meters, ...e.meters },
    };
    return { usage: this.current, reshaped };
  }
}
