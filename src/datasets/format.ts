import { formatBytes } from '../util/format.js';
import type { DatasetInfo, DatasetStatus } from './info.js';
import type { FetchResult } from './fetch/fetch.js';

/** Plain-text renderings of list/info/fetch results for the terminal (the CLI adds colour). */

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatusTable(statuses: DatasetStatus[]): string {
  const rows = [['id', 'name', 'access', 'size', 'fetched', 'indexed']];
  for (const s of statuses) {
    rows.push([
      s.id,
      s.name,
      s.access,
      s.size !== undefined ? formatBytes(s.size) : s.access === 'public' ? '?' : '-',
      s.fetched ? 'yes' : 'no',
      s.indexed ? 'yes' : s.fetched && s.staleness ? `no (${s.staleness})` : 'no',
    ]);
  }
  return table(rows);
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

export function formatInfo(info: DatasetInfo): string {
  const lines = [
    `${info.name} (${info.id}): ${info.format} format, ${info.access} access`,
    `data     ${info.root}`,
    `indexed  ${info.indexedAt}`,
    `tasks    ${info.tasks.map((t) => `${t.name} (${t.kind}, ${t.labels} ${t.kind === 'categorical' ? 'classes' : 'labels'})`).join(', ')}`,
    '',
  ];
  const rows = [['split', 'task', 'samples', 'coverage', 'classes', 'masked']];
  for (const split of info.splits) {
    rows.push([split.split, '(all)', String(split.count), '', '', '']);
    for (const t of split.tasks) {
      const masked = t.kind === 'multilabel' ? `${t.unlabelled} rows, ${t.maskedEntries} entries` : `${t.unlabelled} samples`;
      rows.push(['', t.task, String(t.samples), percent(t.coverage), `${t.classesPresent}/${t.classes}`, masked]);
    }
  }
  lines.push(table(rows));
  if (info.relatedness.length > 0) {
    lines.push('', 'relatedness');
    for (const r of info.relatedness) lines.push(`  ${r.from} → ${r.to}: ${r.shape[0]}×${r.shape[1]} (${r.source})`);
  }
  for (const u of info.undecodable) lines.push(`undecodable images at ${u.size}px, ${u.split}: ${u.count} (e.g. ${u.examples[0]})`);
  for (const note of info.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

export function formatFetchResult(result: FetchResult): string {
  const { index } = result;
  const counts = (['train', 'val', 'test'] as const).map((s) => `${s} ${index.splits[s].ids.length}`).join(', ');
  const lines = [
    `${result.id}: ${counts}; tasks ${index.tasks.map((t) => `${t.name} (${t.labels.length})`).join(', ')}`,
    `data  ${result.root}`,
  ];
  for (const cache of result.caches) {
    const skipped = Object.values(cache.splits).reduce((n, m) => n + m.skipped.length, 0);
    const seconds = Object.values(cache.splits).reduce((n, m) => n + m.buildSeconds, 0);
    const decoded = Object.values(cache.splits).reduce((n, m) => n + m.decoded, 0);
    const undecodable = skipped ? `, ${skipped} undecodable skipped` : '';
    lines.push(`cache ${cache.size}×${cache.size}: ${decoded} images (built in ${seconds.toFixed(1)} s${undecodable})`);
  }
  for (const note of index.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}
