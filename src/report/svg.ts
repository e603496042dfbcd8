/**
 * Small SVG chart builders for the HTML report. Hand-made because the report must be one
 * offline file: no chart library, no script, nothing fetched. Inline SVG in HTML5 needs no
 * namespace attribute, so the file carries no URL at all.
 */

import { SETTINGS } from '../config/settings.js';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** stl grey, then the category10 colours, in the settings' canonical order (so the paper's five keep their colours). */
const SETTING_PALETTE = ['#7f7f7f', '#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#d62728', '#8c564b', '#e377c2', '#bcbd22', '#17becf'];

/**
 * A setting's colour from its place in the canonical order, so that no setting needs an entry of
 * its own: past the palette, hues step by the golden angle, which keeps neighbours apart.
 */
export function colorOf(setting: string): string {
  const index = (SETTINGS as readonly string[]).indexOf(setting);
  if (index >= 0 && index < SETTING_PALETTE.length) return SETTING_PALETTE[index]!;
  const position = index >= 0 ? index : SETTINGS.length + [...setting].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return `hsl(${Math.round((position * 137.508) % 360)}, 60%, 42%)`;
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toFixed(10)));
  return ticks;
}

function fmt(value: number): string {
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function yAxis(frame: Frame, ticks: number[], y: (v: number) => number, label: string): string {
  const parts = ticks.map(
    (t) =>
      `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="grid"/>` +
      `<text x="${frame.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" class="tick">${escapeXml(fmt(t))}</text>`,
  );
  const mid = (frame.top + frame.height - frame.bottom) / 2;
  parts.push(`<text transform="translate(12 ${mid.toFixed(1)}) rotate(-90)" text-anchor="middle" class="axis">${escapeXml(label)}</text>`);
  return parts.join('');
}

/** A legend entry: a series name, drawn in its setting's colour unless given one, dashed or solid. */
interface LegendItem {
  name: string;
  color?: string;
  dashed?: boolean;
}

function legend(frame: Frame, series: (string | LegendItem)[]): string {
  let x = frame.left;
  return series
    .map((entry) => {
      const { name, color, dashed } = typeof entry === 'string' ? { name: entry, color: undefined, dashed: false } : entry;
      const fill = color ?? colorOf(name);
      const swatch = dashed
        ? `<line x1="${x}" x2="${x + 12}" y1="29" y2="29" stroke="${fill}" stroke-width="2" stroke-dasharray="3 2"/>`
        : `<rect x="${x}" y="24" width="10" height="10" fill="${fill}"/>`;
      const item = `${swatch}<text x="${x + 14}" y="33" class="tick">${escapeXml(name)}</text>`;
      x += 22 + name.length * 7;
      return item;
    })
    .join('');
}

function svg(frame: Frame, title: string, body: string): string {
  const label = escapeXml(title);
  const size = `width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}"`;
  return (
    `<svg class="chart" ${size} role="img" aria-label="${label}">` +
    `<title>${label}</title><text x="8" y="16" class="title">${label}</text>${body}</svg>`
  );
}

/** Wide enough for a value label such as "-48.3" at 10 px, so the labels of neighbouring bars never overlap. */
const BAR_WIDTH = 38;

/**
 * Grouped bars around zero: one group per category (regime), one bar per series (setting). A
 * value beyond `clip` is drawn to the edge and labelled with its true value and an arrow, so one
 * wild value cannot flatten every other bar.
 */
export function groupedBars(options: {
  title: string;
  yLabel: string;
  groups: string[];
  series: string[];
  value: (group: string, series: string) => number | undefined;
  clip?: number;
}): string {
  const frame: Frame = {
    width: Math.max(360, 110 + options.groups.length * (options.series.length * BAR_WIDTH + 30)),
    height: 300,
    left: 60,
    right: 20,
    top: 52,
    bottom: 40,
  };
  const clip = options.clip ?? Number.POSITIVE_INFINITY;
  const shown = (v: number) => Math.max(-clip, Math.min(clip, v));
  const all = options.groups
    .flatMap((g) => options.series.map((s) => options.value(g, s)))
    .filter((v): v is number => v !== undefined && Number.isFinite(v));
  const ticks = niceTicks(Math.min(0, ...all.map(shown)), Math.max(0, ...all.map(shown)));
  if (ticks.length === 0) return '';
  const lo = ticks[0]!;
  const hi = ticks[ticks.length - 1]!;
  const plotHeight = frame.height - frame.top - frame.bottom;
  const y = (v: number) => frame.top + ((hi - v) / (hi - lo)) * plotHeight;
  const groupWidth = (frame.width - frame.left - frame.right) / options.groups.length;
  const barWidth = Math.min(BAR_WIDTH, (groupWidth - 20) / options.series.length);
  let body = yAxis(frame, ticks, y, options.yLabel);
  options.groups.forEach((group, g) => {
    const x0 = frame.left + g * groupWidth + (groupWidth - barWidth * options.series.length) / 2;
    options.series.forEach((series, s) => {
      const v = options.value(group, series);
      if (v === undefined || !Number.isFinite(v)) return;
      const clipped = shown(v) !== v;
      const top = Math.min(y(shown(v)), y(0));
      const h = Math.max(1, Math.abs(y(shown(v)) - y(0)));
      const x = x0 + s * barWidth;
      const tip = `${group} · ${series}: ${v.toFixed(2)}`;
      body +=
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}"` +
        ` fill="${colorOf(series)}"><title>${escapeXml(tip)}</title></rect>`;
      const labelY = v >= 0 ? top - 3 : top + h + 11;
      const label = `${v.toFixed(1)}${clipped ? (v > 0 ? ' ↑' : ' ↓') : ''}`;
      const labelX = (x + barWidth / 2 - 1).toFixed(1);
      body += `<text x="${labelX}" y="${labelY.toFixed(1)}" text-anchor="middle" class="value">${escapeXml(label)}</text>`;
    });
    const groupX = (frame.left + (g + 0.5) * groupWidth).toFixed(1);
    body += `<text x="${groupX}" y="${frame.height - frame.bottom + 18}" text-anchor="middle" class="axis">${escapeXml(group)}</text>`;
  });
  body += `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}" class="zero"/>`;
  body += legend(frame, options.series);
  return svg(frame, options.title, body);
}

/**
 * Mean ± std per setting as dots with whiskers, with the stl baseline and the paper's value as
 * horizontal lines. Dots, not bars, because the axis does not start at zero.
 */
export function dotsWithBaselines(options: {
  title: string;
  yLabel: string;
  points: { setting: string; mean: number; std?: number }[];
  stl?: number;
  paper?: number;
}): string {
  const frame: Frame = { width: Math.max(320, 130 + options.points.length * 78), height: 250, left: 60, right: 70, top: 34, bottom: 36 };
  const extents = options.points.flatMap((p) => [p.mean - (p.std ?? 0), p.mean + (p.std ?? 0)]);
  if (options.stl !== undefined) extents.push(options.stl);
  if (options.paper !== undefined) extents.push(options.paper);
  if (extents.length === 0) return '';
  const ticks = niceTicks(Math.min(...extents), Math.max(...extents));
  const lo = ticks[0]!;
  const hi = ticks[ticks.length - 1]!;
  const plotHeight = frame.height - frame.top - frame.bottom;
  const y = (v: number) => frame.top + ((hi - v) / (hi - lo)) * plotHeight;
  const step = (frame.width - frame.left - frame.right) / Math.max(1, options.points.length);
  let body = yAxis(frame, ticks, y, options.yLabel);
  const hline = (value: number, cls: string, label: string) =>
    `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" class="${cls}"/>` +
    `<text x="${frame.width - frame.right + 4}" y="${(y(value) + 4).toFixed(1)}" class="tick">${escapeXml(label)}</text>`;
  if (options.stl !== undefined) body += hline(options.stl, 'stl', 'stl');
  if (options.paper !== undefined) body += hline(options.paper, 'paper', `paper ${options.paper}`);
  options.points.forEach((p, i) => {
    const x = frame.left + (i + 0.5) * step;
    if (p.std !== undefined && p.std > 0) {
      body +=
        `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y(p.mean + p.std).toFixed(1)}" y2="${y(p.mean - p.std).toFixed(1)}"` +
        ` stroke="${colorOf(p.setting)}" stroke-width="2"/>`;
    }
    const tip = `${p.setting}: ${p.mean.toFixed(2)}${p.std !== undefined ? ` ± ${p.std.toFixed(2)}` : ''}`;
    body +=
      `<circle cx="${x.toFixed(1)}" cy="${y(p.mean).toFixed(1)}" r="5" fill="${colorOf(p.setting)}">` +
      `<title>${escapeXml(tip)}</title></circle>`;
    body +=
      `<text x="${x.toFixed(1)}" y="${frame.height - frame.bottom + 16}" text-anchor="middle" class="tick">` +
      `${escapeXml(p.setting)}</text>`;
  });
  return svg(frame, options.title, body);
}

/** One polyline per series over epochs, over a shaded band from each point's `low` to `high` where given. */
export function lineChart(options: {
  title: string;
  yLabel: string;
  /** `color` overrides the setting colour of `name`; `dashed` draws the line dashed. */
  series: { name: string; color?: string; dashed?: boolean; points: { x: number; y: number; low?: number; high?: number }[] }[];
}): string {
  const series = options.series
    .map((s) => ({ ...s, points: s.points.filter((p) => Number.isFinite(p.y)) }))
    .filter((s) => s.points.length > 0);
  if (series.length === 0) return '';
  const frame: Frame = { width: 420, height: 280, left: 60, right: 20, top: 48, bottom: 40 };
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.flatMap((p) => [p.y, p.low ?? p.y, p.high ?? p.y]));
  const ticks = niceTicks(Math.min(...ys), Math.max(...ys));
  const lo = ticks[0]!;
  const hi = ticks[ticks.length - 1]!;
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const plotWidth = frame.width - frame.left - frame.right;
  const plotHeight = frame.height - frame.top - frame.bottom;
  const x = (v: number) => frame.left + (xMax === xMin ? plotWidth / 2 : ((v - xMin) / (xMax - xMin)) * plotWidth);
  const y = (v: number) => frame.top + ((hi - v) / (hi - lo)) * plotHeight;
  let body = yAxis(frame, ticks, y, options.yLabel);
  for (const epoch of niceTicks(xMin, xMax, Math.min(8, Math.max(1, xMax - xMin))).filter(
    (e) => e >= xMin && e <= xMax && Number.isInteger(e),
  )) {
    const tickX = x(epoch).toFixed(1);
    body += `<text x="${tickX}" y="${frame.height - frame.bottom + 16}" text-anchor="middle" class="tick">${epoch}</text>`;
  }
  const axisX = (frame.left + plotWidth / 2).toFixed(1);
  body += `<text x="${axisX}" y="${frame.height - 6}" text-anchor="middle" class="axis">epoch</text>`;
  for (const s of series) {
    const banded = s.points.filter((p) => p.low !== undefined && p.high !== undefined);
    if (banded.length === 1 && banded[0]!.high! > banded[0]!.low!) {
      // One epoch: the spread over seeds as a whisker.
      const p = banded[0]!;
      body +=
        `<line x1="${x(p.x).toFixed(1)}" x2="${x(p.x).toFixed(1)}" y1="${y(p.high!).toFixed(1)}" y2="${y(p.low!).toFixed(1)}"` +
        ` stroke="${s.color ?? colorOf(s.name)}" stroke-opacity="0.4" stroke-width="6" class="band"/>`;
    } else if (banded.length > 1 && banded.some((p) => p.high! > p.low!)) {
      const upper = banded.map((p) => `${x(p.x).toFixed(1)},${y(p.high!).toFixed(1)}`);
      const lower = banded.map((p) => `${x(p.x).toFixed(1)},${y(p.low!).toFixed(1)}`).reverse();
      body +=
        `<polygon points="${[...upper, ...lower].join(' ')}" fill="${s.color ?? colorOf(s.name)}"` +
        ` fill-opacity="0.15" stroke="none" class="band"/>`;
    }
  }
  for (const s of series) {
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.x).toFixed(1)} ${y(p.y).toFixed(1)}`).join(' ');
    const color = s.color ?? colorOf(s.name);
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    body += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}><title>${escapeXml(s.name)}</title></path>`;
    if (s.points.length === 1)
      body += `<circle cx="${x(s.points[0]!.x).toFixed(1)}" cy="${y(s.points[0]!.y).toFixed(1)}" r="3" fill="${color}"/>`;
  }
  body += legend(
    frame,
    series.map((s) => ({ name: s.name, ...(s.color ? { color: s.color } : {}), ...(s.dashed ? { dashed: true } : {}) })),
  );
  return svg(frame, options.title, body);
}

/**
 * Points over a numeric x (e.g. the sharpness blend β), one line per series, each point with a
 * whisker over its interval where it has one, and a dashed line at y = 0.
 */
export function intervalChart(options: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: { x: number; y: number; low?: number; high?: number }[] }[];
}): string {
  const series = options.series
    .map((s) => ({ ...s, points: s.points.filter((p) => Number.isFinite(p.y)) }))
    .filter((s) => s.points.length > 0);
  if (series.length === 0) return '';
  const frame: Frame = { width: 460, height: 300, left: 60, right: 24, top: 48, bottom: 44 };
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.flatMap((p) => [p.y, p.low ?? p.y, p.high ?? p.y]));
  const ticks = niceTicks(Math.min(0, ...ys), Math.max(0, ...ys));
  const lo = ticks[0]!;
  const hi = ticks[ticks.length - 1]!;
  const xMin = xs[0]!;
  const xMax = xs[xs.length - 1]!;
  const plotWidth = frame.width - frame.left - frame.right;
  const plotHeight = frame.height - frame.top - frame.bottom;
  // Series sit side by side around each x so their whiskers do not hide one another.
  const offset = (i: number) => (i - (series.length - 1) / 2) * 6;
  const x = (v: number, i = 0) =>
    frame.left + 12 + (xMax === xMin ? (plotWidth - 24) / 2 : ((v - xMin) / (xMax - xMin)) * (plotWidth - 24)) + offset(i);
  const y = (v: number) => frame.top + ((hi - v) / (hi - lo)) * plotHeight;
  let body = yAxis(frame, ticks, y, options.yLabel);
  body += `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}" class="stl"/>`;
  for (const v of xs)
    body +=
      `<text x="${x(v).toFixed(1)}" y="${frame.height - frame.bottom + 16}" text-anchor="middle" class="tick">` +
      `${escapeXml(String(v))}</text>`;
  const axisX = (frame.left + plotWidth / 2).toFixed(1);
  body += `<text x="${axisX}" y="${frame.height - 6}" text-anchor="middle" class="axis">${escapeXml(options.xLabel)}</text>`;
  series.forEach((s, i) => {
    const color = colorOf(s.name);
    const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.x, i).toFixed(1)} ${y(p.y).toFixed(1)}`).join(' ');
    body += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>${escapeXml(s.name)}</title></path>`;
    for (const p of s.points) {
      if (p.low !== undefined && p.high !== undefined) {
        body +=
          `<line x1="${x(p.x, i).toFixed(1)}" x2="${x(p.x, i).toFixed(1)}" y1="${y(p.high).toFixed(1)}" y2="${y(p.low).toFixed(1)}"` +
          ` stroke="${color}" stroke-width="2"/>`;
      }
      const interval = p.low !== undefined && p.high !== undefined ? ` [${p.low.toFixed(2)}, ${p.high.toFixed(2)}]` : '';
      const tip = `${s.name} at ${p.x}: ${p.y.toFixed(2)}${interval}`;
      body +=
        `<circle cx="${x(p.x, i).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="4" fill="${color}">` +
        `<title>${escapeXml(tip)}</title></circle>`;
    }
  });
  body += legend(
    frame,
    series.map((s) => s.name),
  );
  return svg(frame, options.title, body);
}
