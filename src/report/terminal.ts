import type { ChalkInstance } from 'chalk';
import type { Report } from './aggregate.js';
import { configurationLines } from './configuration.js';
import { relatednessLine } from './relatedness.js';
import type { SharpnessSweep } from './sharpness_sweep.js';
import { leftOutNotes, transferSentence, type SummaryRow, type TaskOutcome } from './summary.js';
import { FINDING_LABELS } from './verdict.js';
import { keptNote } from './unstable.js';

/**
 * The summary as a terminal table. Cells are padded before they are painted, so the columns line
 * up whether or not colour is on (it is off when piped or under NO_COLOR).
 */
export function summaryTable(report: Report, paint: ChalkInstance): string {
  const lines: string[] = [];
  for (const b of report.benchmarks) {
    lines.push(paint.bold(`${b.name}`) + (b.description ? paint.dim(`  (benchmark file: ${b.description})`) : ''));
    lines.push(paint.dim("  configuration that ran (the cells' config.json):"));
    for (const line of configurationLines(b.configuration))
      lines.push(...wrap(line, WIDTH, '    ', '      ', /(?<=[,;]) /).map((l) => paint.dim(l)));
    const header = [
      'regime',
      'setting',
      ...b.tasks.map((t) => `${t.name} ${t.primary}`),
      'Δm%',
      'Δm% 95% CI',
      'neg. transfer',
      'finding',
      'seeds',
    ];
    const cells = b.summary.map((r) =>
      rowCells(
        r,
        b.tasks.map((t) => t.name),
      ),
    );
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.text.length)));
    const leftAligned = new Set([0, 1, header.length - 3, header.length - 2]);
    const pad = (text: string, i: number) => (leftAligned.has(i) ? text.padEnd(widths[i]!) : text.padStart(widths[i]!));
    lines.push(
      '  ' +
        header
          .map((h, i) => paint.bold(pad(h, i)))
          .join('  ')
          .trimEnd(),
    );
    for (const row of cells)
      lines.push(
        '  ' +
          row
            .map((c, i) => c.style(paint)(pad(c.text, i)))
            .join('  ')
            .trimEnd(),
      );
    lines.push(
      paint.dim(
        '  Metrics in percent, mean over seeds ± half the 95% interval (Student t); the Δm% interval is over Δm% computed per seed;',
      ),
    );
    lines.push(
      paint.dim("  neg. transfer is the paper's (a lower mean than stl on a task); the finding is the paired t-test over seeds per task,"),
    );
    lines.push(paint.dim('  the strongest of the row (a significant drop on one task wins), so it can differ from the Δm% interval.'));
    for (const note of leftOutNotes(b.summary)) lines.push(...wrap(note, WIDTH, '  ', '    ').map((l) => paint.yellow(l)));
    const transfer = transferSentence(b.summary);
    if (transfer) lines.push(...wrap(transfer, WIDTH, '  ', '  '));
    if (b.failures.length > 0)
      lines.push(
        paint.red(`  ${b.failures.length} cell${b.failures.length > 1 ? 's' : ''} failed: ${b.failures.map((f) => f.cell).join(', ')}`),
      );
    if (b.relatedness.length > 0) {
      lines.push(
        paint.dim('  relatedness (sharpness: 1 − mean normalised entropy of R; uninformed: the same for R with every row the mean row):'),
      );
      for (const row of b.relatedness) lines.push(...wrap(relatednessLine(row), WIDTH, '    ', '      '));
    }
    for (const u of b.unstable)
      lines.push(
        ...wrap(`unstable, left out of every number above: ${u.cell}${keptNote(u)}: ${u.reasons.join('; ')}`, WIDTH, '  ', '    ').map(
          (l) => paint.red(l),
        ),
      );
    for (const finding of b.teacherFindings) lines.push(...wrap(finding, WIDTH, '  ', '    ').map((l) => paint.yellow(l)));
    lines.push('');
  }
  lines.push(...sweepLines(report.sweeps, paint));
  for (const w of report.warnings) lines.push(paint.yellow(`warning: ${w}`));
  return lines.join('\n').replace(/\n+$/, '') + '\n';
}

/** Prose under the table is wrapped to this width; the table itself is as wide as its columns. */
const WIDTH = 100;

/**
 * Breaks `text` at spaces (or only at the spaces `breaks` matches) into lines of at most `width`
 * characters; a longer piece gets a line of its own.
 */
function wrap(text: string, width: number, first: string, rest: string, breaks: RegExp = / /): string[] {
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

function signed(value: number): string {
  return `${value > 0 ? '+' : ''}${value.toFixed(2)}`;
}

/** "61.25 ±0.61", or the mean alone for one seed. */
function meanWithInterval(outcome: TaskOutcome | undefined): string {
  if (!outcome) return '–';
  return outcome.ci ? `${outcome.mean.toFixed(2)} ±${((outcome.ci.high - outcome.ci.low) / 2).toFixed(2)}` : outcome.mean.toFixed(2);
}

function rowCells(r: SummaryRow, tasks: string[]): Cell[] {
  const dm = r.delta_m_pct;
  const without = r.delta_m_left_out.length > 0 && dm !== undefined ? ` (w/o ${r.delta_m_left_out.map((l) => l.task).join(', ')})` : '';
  const ci = r.delta_m_seeds?.ci;
  const nt =
    r.setting === 'stl'
      ? 'baseline'
      : r.negative_transfer === undefined
        ? '–'
        : r.negative_transfer
          ? `yes: ${r.worse_tasks.join(', ')}`
          : 'no';
  const style = findingStyle(r.finding);
  return [
    { text: r.regime, style: plain },
    { text: r.setting, style: (p) => p.cyan },
    ...tasks.map((task) => ({ text: meanWithInterval(r.tasks.find((o) => o.task === task)), style: plain })),
    { text: dm === undefined ? '–' : `${signed(dm)}${without}`, style: dm === undefined ? (p: ChalkInstance) => p.dim : plain },
    { text: ci ? `[${signed(ci.low)}, ${signed(ci.high)}]` : '–', style: plain },
    {
      text:
        nt +
        (r.failed_cells > 0 ? ` (${r.failed_cells} failed)` : '') +
        (r.unstable_cells > 0 ? ` (${r.unstable_cells} unstable, left out)` : ''),
      style: r.setting === 'stl' ? (p: ChalkInstance) => p.dim : plain,
    },
    { text: FINDING_LABELS[r.finding], style },
    { text: String(r.n), style: plain },
  ];
}

/** Δm% [95% CI] per β, one line per regime and setting of each sweep. */
function sweepLines(sweeps: SharpnessSweep[], paint: ChalkInstance): string[] {
  const lines: string[] = [];
  for (const family of [...new Set(sweeps.map((s) => s.family))]) {
    lines.push(paint.bold(`Δm% against the sharpness blend β: ${family}`));
    for (const sweep of sweeps.filter((s) => s.family === family)) {
      for (const series of sweep.series) {
        const points = series.points.map(
          (p) =>
            `β ${p.beta}: ${p.deltaM === undefined ? '–' : signed(p.deltaM)}` +
            (p.ci ? ` [${signed(p.ci.low)}, ${signed(p.ci.high)}]` : ''),
        );
        lines.push(...wrap(`${sweep.regime} ${series.setting}: ${points.join('; ')}`, WIDTH, '  ', '    ', /(?<=;) /));
      }
    }
    lines.push('');
  }
  return lines;
}
