// Display helpers: numbers, UTC times, durations, meter names.
import type { Band } from './api';

const numbers = new Intl.NumberFormat('en-US');
const utc = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});
const utcDay = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
const clock = new Intl.DateTimeFormat('en-GB', { timeStyle: 'medium' });
const dollars = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

export const num = (n: number): string => numbers.format(n);
const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
/** A percentage to one decimal: 68494.93 -> "68,494.9 %". */
export const percent = (n: number): string => `${oneDecimal.format(n)} %`;
export const when = (iso: string): string => `${utc.format(new Date(iso))} UTC`;
/** The UTC day only: "14 Dec 2026". */
export const day = (iso: string): string => utcDay.format(new Date(iso));
export const clockTime = (d: Date): string => clock.format(d);
/** Cents as currency: 3500 -> "$35.00", -150 -> "-$1.50". */
export const money = (cents: number): string => dollars.format(cents / 100);
/** A plan's price per period: -1 is "priced by contract". */
export const price = (cents: number): string =>
  cents < 0 ? 'Priced by contract' : `${money(cents)} per period`;

/// "12 d 3 h", "3 h 20 min", "45 s".
export function duration(ms: number): string {
  if (ms <= 0) return 'now';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min`;
  return `${s} s`;
}

/// "messages_sent" -> "Messages sent", "api_calls" -> "API calls".
export function meterTitle(name: string): string {
  const words = name
    .split('_')
    .map((w) => (w === 'api' || w === 'ai' ? w.toUpperCase() : w))
    .join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The band in words, so that colour is never the only signal. */
export const bandWords: Record<Band, string> = {
  green: 'OK',
  yellow: 'Warning',
  red: 'Critical',
};

/// Creates an element with a class and text.
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = '',
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e as T;
}
