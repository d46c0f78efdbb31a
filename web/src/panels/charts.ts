// The daily chart (the filter's range), today's hourly chart and the 12-period
// history chart, drawn with uPlot.
// Each chart box is role="img" with a sentence that summarises its data.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { DailyRow, HistoryPeriod, HourRow } from '../api';
import { byId, num } from '../format';

const SENT = '#0b5cad';
const RECEIVED = '#8a4baf';
const HEIGHT = 220;

const charts = new Map<string, uPlot>();

function widthOf(box: HTMLElement): number {
  return Math.max(200, Math.floor(box.clientWidth));
}

function draw(id: string, opts: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData) {
  const box = byId(id);
  const old = charts.get(id);
  if (old && old.series.length === opts.series.length) {
    old.setData(data);
    return;
  }
  old?.destroy();
  // Time axes in UTC, as the routes count days and hours, whatever the browser's zone.
  const tzDate = (ts: number) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');
  const chart = new uPlot({ ...opts, tzDate, width: widthOf(box), height: HEIGHT }, data, box);
  charts.set(id, chart);
}

const bars = uPlot.paths.bars!({ size: [0.7, 40] });

function axes(): uPlot.Axis[] {
  const grid = { stroke: '#d0d7de', width: 1 };
  return [
    { stroke: '#24292f', grid: { show: false }, ticks: grid },
    { stroke: '#24292f', grid, ticks: grid, size: 50 },
  ];
}

/// Days oldest first; x is the UTC midnight of each day in seconds.
/// `range` names the days in words for the chart's summary.
export function renderDaily(rows: DailyRow[], range: string): void {
  const days = [...rows].reverse();
  const x = days.map((r) => Date.parse(`${r.date}T00:00:00Z`) / 1000);
  const sent = days.map((r) => r.messages_sent ?? 0);
  const received = days.map((r) => r.messages_received ?? 0);
  draw(
    'daily-chart',
    {
      legend: { show: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: (_u, min, max) => [min - 43_200, max + 43_200] },
        y: { range: (_u, _min, max) => [0, Math.max(10, max)] },
      },
      axes: axes(),
      series: [
        {},
        { label: 'Messages sent', stroke: SENT, fill: `${SENT}cc`, paths: bars, points: { show: false } },
        { label: 'Messages received', stroke: RECEIVED, width: 2, points: { show: false } },
      ],
    },
    [x, sent, received],
  );
  const total = sent.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...sent);
  const peakDay = days[sent.indexOf(peak)]?.date ?? '';
  byId('daily-chart').setAttribute(
    'aria-label',
    `Messages per day, ${range} (${days.length} ${days.length === 1 ? 'day' : 'days'}): ${num(total)} sent` +
      (peak > 0 ? `, most on ${peakDay} (${num(peak)})` : '') +
      `; ${num(received.reduce((a, b) => a + b, 0))} received.`,
  );
}

/// Today's 24 UTC hours, oldest first; x is each hour's start in seconds.
export function renderHourly(rows: HourRow[]): void {
  const x = rows.map((r) => Date.parse(r.hour) / 1000);
  const sent = rows.map((r) => r.messages_sent ?? 0);
  draw(
    'hourly-chart',
    {
      legend: { show: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: (_u, min, max) => [min - 1_800, max + 1_800] },
        y: { range: (_u, _min, max) => [0, Math.max(10, max)] },
      },
      axes: axes(),
      series: [{}, { label: 'Messages sent', stroke: SENT, fill: `${SENT}cc`, paths: bars, points: { show: false } }],
    },
    [x, sent],
  );
  const total = sent.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...sent);
  const peakHour = rows[sent.indexOf(peak)]?.hour.slice(11, 16) ?? '';
  byId('hourly-chart').setAttribute(
    'aria-label',
    `Messages sent per hour today (UTC): ${num(total)}` +
      (peak > 0 ? `, most at ${peakHour} (${num(peak)})` : '') +
      '.',
  );
}

/// Periods oldest first, one bar each at x = 0, 1, ... labelled by the period.
export function renderHistory(periods: HistoryPeriod[]): void {
  const ps = [...periods].reverse();
  const x = ps.map((_p, i) => i);
  const sent = ps.map((p) => Number(p.messages_sent ?? 0));
  const [xAxis, yAxis] = axes();
  draw(
    'history-chart',
    {
      legend: { show: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(ps.length, 6) - 0.5] },
        y: { range: (_u, _min, max) => [0, Math.max(10, max)] },
      },
      axes: [
        {
          ...xAxis,
          splits: () => x,
          values: (_u, splits) => splits.map((i) => ps[i]?.period ?? ''),
        },
        yAxis,
      ],
      series: [{}, { label: 'Messages sent', stroke: SENT, fill: `${SENT}cc`, paths: bars, points: { show: false } }],
    },
    [x, sent],
  );
  const parts = ps.map((p, i) => `${p.period}: ${num(sent[i])}`);
  byId('history-chart').setAttribute(
    'aria-label',
    `Messages sent per billing period, oldest first. ${parts.join('; ')}.`,
  );
}

/** Charts follow their box's width (the 375 px layout among others). */
export function watchChartWidths(): void {
  const ro = new ResizeObserver(() => {
    for (const [id, chart] of charts) chart.setSize({ width: widthOf(byId(id)), height: HEIGHT });
  });
  ro.observe(byId('daily-chart'));
  ro.observe(byId('hourly-chart'));
  ro.observe(byId('history-chart'));
}

export function clearCharts(): void {
  for (const c of charts.values()) c.destroy();
  charts.clear();
}
