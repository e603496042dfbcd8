import type { ChalkInstance } from 'chalk';
import type { Report } from './aggregate.js';
import { configurationLines } from './configuration.js';
import { leftOutNotes, transferSentence, type SummaryRow } from './summary.js';

/**
 * The summary as a terminal table. Cells are padded before they are painted, so the columns line
 * up whether or not colour is on (it is off when piped or under NO_COLOR).
 */
export function summaryTable(report: Report, paint: ChalkInstance): string {
  const lines: string[] = [];
  for (const b of report.benchmarks) {
    lines.push(paint.bold(`${b.name}`) + (b.description ? paint.dim(`  (benchmark file: ${b.description})`) : ''));
    lines.push(paint.dim("  configuration that ran (the cells' config.json):"));
    for (const line of configurationLines(b.configuration)) lines.push(...wrap(line, WIDTH, '    ', '      ', /(?<=[,;]) /).map((l) => paint.dim(l)));
    const header = ['regime', 'setting', 'Δm%', 'worse/T', 'negative transfer', 'train s', 'seeds'];
    const T = b.tasks.length;
    const cells = b.summary.map((r) => rowCells(r, T));
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.text.length)));
    const rightAligned = new Set([2, 3, 5, 6]);
    const pad = (text: string, i: number) => (rightAligned.has(i) ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
    lines.push('  ' + header.map((h, i) => paint.bold(pad(h, i))).join('  '));
    for (const row of cells) lines.push('  ' + row.map((c, i) => c.style(paint)(pad(c.text, i))).join('  ').trimEnd());
    for (const note of leftOutNotes(b.summary)) lines.push(...wrap(note, WIDTH, '  ', '    ').map((l) => paint.yellow(l)));
    const transfer = transferSentence(b.summary);
    if (transfer) lines.push(...wrap(transfer, WIDTH, '  ', '  '));
    if (b.failures.length > 0) lines.push(paint.red(`  ${b.failures.length} cell${b.failures.length > 1 ? 's' : ''} failed: ${b.failures.map((f) => f.cell).join(', ')}`));
    lines.push('');
  }
  for (const w of report.warnings) lines.push(paint.yellow(`warning: ${w}`));
  return lines.join('\n').replace(/\n+$/, '') + '\n';
}

/** Prose under the table is wrapped to this width; the table itself is as wide as its columns. */
const WIDTH = 100;

/**
 * Breaks `text` at spaces (or only at the spaces `breaks` matches) into lines of at most `width`
 * characters; a longer piece gets a line of its own.
 */
export function wrap(text: string, width: number, first: string, rest: string, breaks: RegExp = / /): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(breaks)) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    line += (empty ? '' : ' ') + word;
    empty = false;
  }
  lines.push(line);
  return lines;
}

interface Cell {
  text: string;
  style: (p: ChalkInstance) => (s: string) => string;
}

const plain = () => (s: string) => s;

/** Only evidence is coloured as a finding: a drop within noise is yellow, one seed is dim. */
function findingStyle(finding: SummaryRow['finding']): Cell['style'] {
  switch (finding) {
    case 'significant-drop':
      return (p) => p.red.bold;
    case 'drop-within-noise':
      return (p) => p.yellow;
    case 'significant-gain':
      return (p) => p.green;
    case 'no-difference':
      return plain;
    default:
      return (p) => p.dim;
  }
}

function rowCells(r: SummaryRow, taskCount: number): Cell[] {
  const dm = r.delta_m_pct;
  const without = r.delta_m_left_out.length > 0 && dm !== undefined ? ` (w/o ${r.delta_m_left_out.map((l) => l.task).join(', ')})` : '';
  const dmText = dm === undefined ? '–' : `${dm > 0 ? '+' : ''}${dm.toFixed(2)}${without}`;
  const dmStyle = dm === undefined ? (p: ChalkInstance) => p.dim : dm < 0 ? (p: ChalkInstance) => p.red : dm > 0 ? (p: ChalkInstance) => p.green : plain;
  const nt = r.setting === 'stl' ? 'baseline' : r.negative_transfer === undefined ? '–' : r.negative_transfer ? `yes: ${r.worse_tasks.join(', ')}` : 'no';
  const ntStyle = findingStyle(r.finding);
  return [
    { text: r.regime, style: plain },
    { text: r.setting, style: (p) => p.cyan },
    { text: dmText, style: dmStyle },
    { text: r.tasks_worse_than_stl === undefined ? '–' : `${r.tasks_worse_than_stl}/${taskCount}`, style: r.tasks_worse_than_stl ? (p) => p.red : plain },
    { text: nt + (r.failed_cells > 0 ? ` (${r.failed_cells} failed)` : ''), style: ntStyle },
    { text: r.train_seconds === undefined ? '–' : r.train_seconds.toFixed(1), style: plain },
    { text: String(r.n), style: plain },
  ];
}
