import type { BenchmarkReport, Report } from './aggregate.js';
import { MIN_BASELINE } from './floor.js';
import { groupTitle, seedsText, type ConfigValue, type RunConfiguration } from './configuration.js';
import type { Interval } from './stats.js';
import { leftOutNotes, transferSentence, type SummaryRow, type TaskOutcome } from './summary.js';
import { FINDING_LABELS } from './verdict.js';
import { provenanceText } from './relatedness.js';
import { keptNote } from './unstable.js';
import type { SharpnessSweep } from './sharpness_sweep.js';
import { colorOf, dotsWithBaselines, escapeXml as esc, groupedBars, intervalChart, lineChart } from './svg.js';

/**
 * report.html: one file that opens offline in any browser. Inline CSS and inline SVG only: no
 * script, no font, no stylesheet or image fetched from anywhere. It holds no timestamp, so the
 * same results always give the same file (merged shards equal a single run).
 */

/** The page's CSS, one string per line (a long line continued with +), between a leading and a trailing newline. */
const STYLE = [
  '',
  'body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; ' +
    'max-width: 1200px; padding: 0 16px; color: #222; }',
  'h1 { font-size: 22px; margin-bottom: 4px; } ' +
    'h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }',
  'h3 { font-size: 16px; margin-top: 24px; } h4 { font-size: 14px; margin: 16px 0 4px; } p.note { color: #555; margin-top: 2px; }',
  'p, li { overflow-wrap: anywhere; }',
  '.scroll { overflow-x: auto; max-width: 100%; margin: 8px 0 16px; }',
  'table { border-collapse: collapse; font-variant-numeric: tabular-nums; }',
  'th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: right; white-space: nowrap; } th { background: #f6f6f6; }',
  'td.text, th.text { text-align: left; } td.wrap { white-space: normal; min-width: 24em; }',
  'tr.group td { border-top: 2px solid #ccc; }',
  'table.config td { vertical-align: top; white-space: normal; }',
  '.hurts { color: #b00020; font-weight: 600; } .helps { color: #1b7f2a; } .noise { color: #8a5a00; } .muted { color: #777; }',
  '.best { color: #b8860b; }',
  '.charts { display: flex; flex-wrap: wrap; gap: 12px; }',
  'svg.chart { background: #fff; border: 1px solid #eee; max-width: 100%; height: auto; }',
  'svg .grid { stroke: #eee; } svg .zero { stroke: #444; } svg .tick { font-size: 11px; fill: #555; }',
  'svg .axis { font-size: 12px; fill: #333; } svg .title { font-size: 12px; font-weight: 600; fill: #222; } ' +
    'svg .value { font-size: 10px; fill: #333; }',
  'svg .stl { stroke: #7f7f7f; stroke-dasharray: 6 4; stroke-width: 1.5; } ' +
    'svg .paper { stroke: #b00020; stroke-dasharray: 2 3; stroke-width: 1.5; }',
  'ul.warn li { color: #8a5a00; } ul.verdicts .hurts { font-weight: normal; }',
  '',
].join('\n');

const DASH = '<span class="muted">–</span>';

/** Δm% bars stop here (percent); a larger value is drawn to the edge with its number. */
const DELTA_M_CHART_LIMIT = 200;

function num(value: number | undefined, decimals = 2, signed = false): string {
  if (value === undefined || !Number.isFinite(value)) return DASH;
  const text = value.toFixed(decimals);
  return signed && value > 0 ? `+${text}` : text;
}

function interval(ci: Interval | undefined): string {
  return ci ? `${num(ci.low)} to ${num(ci.high)}` : DASH;
}

function pValue(p: number | undefined): string {
  return p === undefined ? DASH : p < 0.001 ? '&lt; 0.001' : String(Number(p.toPrecision(2)));
}

/** Only evidence is coloured as a finding; a drop within noise is amber, one seed is grey. */
const FINDING_CLASS: Record<SummaryRow['finding'], string> = {
  'significant-drop': 'hurts',
  'drop-within-noise': 'noise',
  'significant-gain': 'helps',
  'no-difference': '',
  'one-seed': 'muted',
  'no-pair': 'muted',
  'no-baseline': 'muted',
  baseline: 'muted',
  incomplete: 'muted',
};

function scroll(table: string): string {
  return `<div class="scroll">${table}</div>`;
}

/** A task's primary metric in the summary: its mean with the 95% interval over seeds. */
function taskCell(outcome: TaskOutcome | undefined): string {
  if (!outcome) return DASH;
  const ci = outcome.ci ? ` <span class="muted">[${num(outcome.ci.low)}, ${num(outcome.ci.high)}]</span>` : '';
  return `${num(outcome.mean)}${ci}`;
}

function summaryTable(b: BenchmarkReport): string {
  const taskHeads = b.tasks.map((t) => `<th>${esc(t.name)} ${esc(t.primary)} [95% CI]</th>`).join('');
  const head =
    `<tr><th class="text">regime</th><th class="text">setting</th>${taskHeads}<th>Δm%</th><th>Δm% per seed: 95% CI</th><th>p</th>` +
    '<th>tasks worse than stl</th><th>significant drops</th><th>train s / seed</th><th>seeds</th><th class="text">finding</th></tr>';
  const body = b.summary
    .map((r) => {
      const tasks = b.tasks.map((t) => `<td>${taskCell(r.tasks.find((o) => o.task === t.name))}</td>`).join('');
      const without =
        r.delta_m_left_out.length > 0 && r.delta_m_pct !== undefined
          ? ` <span class="muted">w/o ${esc(r.delta_m_left_out.map((l) => l.task).join(', '))}</span>`
          : '';
      const worse =
        r.tasks_worse_than_stl === undefined
          ? DASH
          : `${r.tasks_worse_than_stl}${r.worse_tasks.length > 0 ? ` <span class="muted">(${esc(r.worse_tasks.join(', '))})</span>` : ''}`;
      return (
        `<tr><td class="text">${esc(r.regime)}</td><td class="text">${esc(r.setting)}</td>${tasks}` +
        `<td>${num(r.delta_m_pct, 2, true)}${without}</td><td>${interval(r.delta_m_seeds?.ci)}</td><td>${pValue(r.delta_m_seeds?.p)}</td>` +
        `<td>${worse}</td><td>${r.tasks_significantly_worse ?? DASH}</td><td>${num(r.train_seconds, 1)}</td><td>${r.n}</td>` +
        `<td class="text ${FINDING_CLASS[r.finding]}">${FINDING_LABELS[r.finding]}</td></tr>`
      );
    })
    .join('');
  const verdicts = b.summary
    .filter((r) => r.setting !== 'stl')
    .map((r) => `<li><b>${esc(r.setting)}</b> in ${esc(r.regime)}: <span class="${FINDING_CLASS[r.finding]}">${esc(r.verdict)}</span></li>`)
    .join('');
  return scroll(`<table>${head}${body}</table>`) + (verdicts ? `<ul class="verdicts">${verdicts}</ul>` : '');
}

/** One table per task: its metrics per regime, the best mean of each regime and metric starred. */
function leaderboardTables(b: BenchmarkReport): string {
  const parts: string[] = [];
  const head =
    '<tr><th class="text">regime</th><th class="text">metric</th><th class="text">setting</th>' +
    '<th>mean</th><th>95% CI</th><th>std</th><th>n</th><th>stl</th><th>Δ vs stl</th><th>paired Δ: 95% CI</th><th>p</th>' +
    '<th class="text">finding</th><th>paper</th><th>gap to paper</th><th>rank</th></tr>';
  for (const task of b.tasks) {
    const rows = b.leaderboard.filter((r) => r.task === task.name);
    if (rows.length === 0) continue;
    let previous = '';
    const body = rows
      .map((r) => {
        const groupKey = `${r.regime}|${r.metric}`;
        const first = groupKey !== previous;
        previous = groupKey;
        const star = r.rank === 1 ? ' <span class="best" title="best mean of this regime and metric">★</span>' : '';
        const isStl = r.setting === 'stl';
        return (
          `<tr${first ? ' class="group"' : ''}><td class="text">${esc(r.regime)}</td>` +
          `<td class="text">${esc(r.metric)}${r.primary ? ' <span class="muted">(primary)</span>' : ''}</td>` +
          `<td class="text">${esc(r.setting)}</td><td>${num(r.mean)}${star}</td><td>${interval(r.ci)}</td><td>${num(r.std)}</td>` +
          `<td>${r.n}</td><td>${num(r.stl_mean)}</td><td>${isStl ? DASH : num(r.delta_vs_stl, 2, true)}</td>` +
          `<td>${isStl ? DASH : interval(r.paired?.ci)}</td><td>${isStl ? DASH : pValue(r.paired?.p)}</td>` +
          `<td class="text ${FINDING_CLASS[r.finding]}">${FINDING_LABELS[r.finding]}</td><td>${num(r.paper)}</td>` +
          `<td>${num(r.gap_to_paper, 2, true)}</td><td>${r.rank}</td></tr>`
        );
      })
      .join('');
    parts.push(
      `<h4>${esc(task.name)} <span class="muted">(primary metric: ${esc(task.primary)})</span></h4>`,
      scroll(`<table>${head}${body}</table>`),
    );
  }
  return parts.join('\n');
}

/** One of the values the cells disagree on: how many cells ran with it, and the first three of them. */
function differingValue(v: ConfigValue): string {
  const cells = `${esc(v.cells.slice(0, 3).join(', '))}${v.cells.length > 3 ? ', …' : ''}`;
  return `${esc(v.value)} <span class="muted">(${v.cells.length}: ${cells})</span>`;
}

/** The configuration the cells ran with; a row where they disagree is marked and names the cells of each value. */
function configurationTable(configuration: RunConfiguration): string {
  let lastGroup = '';
  const rows = configuration.items.map((item) => {
    const group = item.group === lastGroup ? '' : groupTitle(item.group);
    lastGroup = item.group;
    const value =
      item.values.length === 1
        ? esc(item.values[0]!.value)
        : `<span class="noise">cells differ: ${item.values.map(differingValue).join('; ')}</span>`;
    return `<tr><td class="text muted">${esc(group)}</td><td class="text">${esc(item.label)}</td><td class="text">${value}</td></tr>`;
  });
  rows.push(`<tr><td class="text muted">seeds</td><td class="text"></td><td class="text">${esc(seedsText(configuration))}</td></tr>`);
  return scroll(`<table class="config">${rows.join('')}</table>`);
}

/** Sharpness and provenance of each relatedness pair, beside the summary. */
function relatednessTable(b: BenchmarkReport): string {
  if (b.relatedness.length === 0) return '';
  const head =
    '<tr><th class="text">pair</th><th class="text">kind</th><th>sharpness</th><th>uninformed sharpness</th><th>entries above 0.5</th>' +
    '<th class="text">where R came from</th><th>cells</th></tr>';
  const body = b.relatedness
    .map(
      (r) =>
        `<tr><td class="text">${esc(r.pair)}</td><td class="text">${esc(r.kind)}</td><td>${num(r.sharpness)}</td>` +
        `<td>${num(r.uninformedSharpness)}</td><td>${Number(r.entriesAboveHalf.toFixed(1))} / ${r.entries}</td>` +
        `<td class="text wrap">${esc(provenanceText(r))}</td><td>${r.cells}</td></tr>`,
    )
    .join('');
  return (
    '<h3>Relatedness: how crisp, and from where</h3>' +
    scroll(`<table>${head}${body}</table>`) +
    '<p class="note">Sharpness is one minus the mean normalised entropy of R: ' +
    'of its rows (each a distribution over the classes of the related task) for categorical → categorical, ' +
    'of its entries (each a Bernoulli probability) for categorical → multi-label. ' +
    '1 is a table of certainties, 0 one that says nothing; the uninformed sharpness is the same figure for R̄, ' +
    'every row replaced by the mean row, the level a table that ignores the class would reach. ' +
    'Counts on co-annotated samples (data) get a row per regime, averaged over its cells.</p>'
  );
}

function unstableList(b: BenchmarkReport): string {
  if (b.unstable.length === 0) return '';
  const items = b.unstable.map((u) => `<li><code>${esc(u.cell)}</code>${esc(keptNote(u))}: ${esc(u.reasons.join('; '))}</li>`).join('');
  return (
    `<h3 class="hurts">Unstable cells, left out of every number above</h3><ul>${items}</ul>` +
    '<p class="note">The trainer flags a cell when its training loss (total or supervised) ends above 1.5× its lowest epoch ' +
    'and at least 0.1 above it, ' +
    'a primary validation metric falls by more than 20 points between two epochs at least twice, ' +
    'or a multi-label head predicts at least half of the annotated test entries present and twice the true share. ' +
    'Such a seed is not averaged with healthy ones; the summary says which seeds were left out.</p>'
  );
}

/** Each direction's target against the head it teaches, on validation, per epoch. */
function teacherSection(b: BenchmarkReport): string {
  if (b.teachers.length === 0) return '';
  const parts: string[] = [
    '<h3>Teachers and their students</h3>',
    '<p class="note">Each SCA and DM direction\'s target, read as a prediction (argmax class, or labels with probability above 0.5) ' +
      "and scored on the validation split (dashed), beside the head it teaches (solid), in the taught task's primary metric: " +
      'mean over seeds, band from the lowest to the highest seed. ' +
      'An SCA target is built from true labels and does not change between epochs.</p>',
  ];
  if (b.teacherFindings.length > 0) parts.push(`<ul class="warn">${b.teacherFindings.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>`);
  for (const regime of b.regimes) {
    const charts = b.teachers
      .filter((t) => t.regime === regime)
      .map((t) =>
        lineChart({
          title: `${regime}, ${t.setting}: ${t.direction}`,
          yLabel: `${t.task} ${t.metric} (%)`,
          series: [
            {
              name: `${t.task} head`,
              color: colorOf(t.setting),
              points: t.student.map((p) => ({ x: p.epoch, y: p.mean, low: p.low, high: p.high })),
            },
            {
              name: 'teacher',
              color: colorOf(t.setting),
              dashed: true,
              points: t.teacher.map((p) => ({ x: p.epoch, y: p.mean, low: p.low, high: p.high })),
            },
          ],
        }),
      )
      .filter((svg) => svg !== '');
    if (charts.length > 0) parts.push(`<h4>${esc(regime)}</h4>`, `<div class="charts">${charts.join('')}</div>`);
  }
  return parts.join('\n');
}

/** Δm% against β, per family of benchmarks that differ only in β and per regime. */
function sweepSection(sweeps: SharpnessSweep[]): string {
  if (sweeps.length === 0) return '';
  const parts: string[] = [
    '<h2>Δm% against the sharpness of the relatedness</h2>',
    '<p class="note">Benchmarks that differ only in <code>sharpness_blend</code> β, where R becomes (1 − β)·R + β·R̄ ' +
      '(β = 0: the relatedness as given; β = 1: every row the mean row, uninformative). ' +
      "Each point is a setting's Δm% against stl in that benchmark, " +
      'the whisker the 95% interval of Δm% computed per seed (none for one seed); unstable cells are left out.</p>',
  ];
  for (const family of [...new Set(sweeps.map((s) => s.family))]) {
    parts.push(`<h3>${esc(family)}</h3>`);
    const charts = sweeps
      .filter((s) => s.family === family)
      .map((s) =>
        intervalChart({
          title: `${s.regime}: Δm% against β`,
          xLabel: 'sharpness blend β',
          yLabel: 'Δm% vs stl',
          series: s.series.map((series) => ({
            name: series.setting,
            points: series.points
              .filter((p) => p.deltaM !== undefined)
              .map((p) => ({ x: p.beta, y: p.deltaM!, ...(p.ci ? { low: p.ci.low, high: p.ci.high } : {}) })),
          })),
        }),
      );
    parts.push(`<div class="charts">${charts.join('')}</div>`);
  }
  return parts.join('\n');
}

function benchmarkSection(b: BenchmarkReport): string {
  const parts: string[] = [];
  parts.push(`<h2>${esc(b.name)}</h2>`);
  if (b.description) parts.push(`<p>${esc(b.description)} <span class="muted">(the benchmark file's description)</span></p>`);
  parts.push(
    '<h3>Configuration that ran</h3>',
    '<p class="note">Read from the cells\' config.json, so command-line overrides such as <code>--epochs</code> show here.</p>',
    configurationTable(b.configuration),
  );
  parts.push('<h3>Summary</h3>', summaryTable(b));
  const transfer = transferSentence(b.summary);
  if (transfer) parts.push(`<p>${esc(transfer)}</p>`);
  const leftOut = leftOutNotes(b.summary);
  if (leftOut.length > 0) parts.push(`<ul class="warn">${leftOut.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  for (const part of [relatednessTable(b), unstableList(b)]) if (part) parts.push(part);
  parts.push(
    `<p class="note">Metrics in percent on the test split of ${esc(b.dataset)}, checkpoint chosen on validation. ` +
      'Each mean comes with its 95% interval over seeds (Student t). ' +
      'Against stl, settings are compared seed by seed (same regime draw and split): ' +
      "the paired differences' mean, their 95% interval and a two-sided paired t-test; " +
      'a difference is called significant at p &lt; 0.05, with no correction for the number of rows compared, ' +
      'and one seed gives no verdict at all. ' +
      'Δm% = (100/T) Σ<sub>t</sub> (M<sub>t</sub> − M<sub>t</sub><sup>stl</sup>) / M<sub>t</sub><sup>stl</sup> ' +
      "on the primary metrics' means (the paper's definition), and computed on each seed then summarised the same way; " +
      `a task whose stl value is at or below chance or under ${MIN_BASELINE} point on any seed is left out of it. ` +
      'Negative transfer (the paper): a lower mean than stl on at least one task; ' +
      'significant drops count only the drops the paired test supports.</p>',
  );
  const mtlSettings = b.settings.filter((s) => s !== 'stl');
  const deltaChart = groupedBars({
    title: `${b.name}: Δm% against stl`,
    yLabel: 'Δm% vs stl',
    groups: b.regimes,
    series: mtlSettings,
    value: (regime, setting) => b.summary.find((r) => r.regime === regime && r.setting === setting)?.delta_m_pct,
    clip: DELTA_M_CHART_LIMIT,
  });
  if (deltaChart) parts.push('<h3>Δm% per setting and regime</h3>', `<div class="charts">${deltaChart}</div>`);

  parts.push(
    '<h3>Each task against its single-task baseline and the paper</h3>',
    '<p class="note">The primary metric on the test split: a dot for the mean over seeds, ' +
      "a whisker for ± one sample standard deviation, the stl mean and the paper's value as lines.</p>",
  );
  const taskCharts: string[] = [];
  for (const regime of b.regimes) {
    for (const task of b.tasks) {
      const rows = b.leaderboard.filter((r) => r.regime === regime && r.task === task.name && r.metric === task.primary);
      if (rows.length === 0) continue;
      taskCharts.push(
        dotsWithBaselines({
          title: `${regime}: ${task.name} ${task.primary}`,
          yLabel: `${task.primary} (%)`,
          points: rows.map((r) => ({ setting: r.setting, mean: r.mean, std: r.std })),
          stl: rows[0]!.stl_mean,
          paper: rows[0]!.paper,
        }),
      );
    }
  }
  parts.push(`<div class="charts">${taskCharts.join('')}</div>`);

  const curveParts: string[] = [];
  for (const regime of b.regimes) {
    const charts = b.curves
      .filter((c) => c.regime === regime)
      .map((c) => {
        const primary = b.tasks.find((t) => t.name === c.name)?.primary ?? '';
        return lineChart({
          title: c.kind === 'validation' ? `${regime}: ${c.name} ${primary} on validation` : `${regime}: loss ${c.name}`,
          yLabel: c.kind === 'validation' ? `${primary} (%)` : 'loss',
          series: c.series.map((s) => ({
            name: s.setting,
            points: s.points.map((p) => ({ x: p.epoch, y: p.mean, low: p.low, high: p.high })),
          })),
        });
      })
      .filter((svg) => svg !== '');
    if (charts.length > 0) curveParts.push(`<h4>${esc(regime)}</h4>`, `<div class="charts">${charts.join('')}</div>`);
  }
  if (curveParts.length > 0) {
    parts.push(
      '<h3>Training curves</h3>',
      '<p class="note">Each task\'s primary metric on validation, and each loss term on its own ' +
        '(the supervised loss of a task; SCA and DM per direction, unweighted), per epoch: ' +
        'the line is the mean over seeds, the band spans the lowest to the highest seed.</p>',
      ...curveParts,
    );
  }
  const teachers = teacherSection(b);
  if (teachers) parts.push(teachers);

  parts.push(
    '<h3>Leaderboard</h3>',
    '<p class="note">Grouped by task. <span class="best">★</span> marks the best mean among the settings of a regime on a metric ' +
      '(equal means share it). The verdict compares with stl on the same seeds (paired t-test, two-sided, 5%).</p>',
    leaderboardTables(b),
  );
  if (b.failures.length > 0) {
    parts.push(
      '<h3 class="hurts">Failed cells</h3>',
      `<ul>${b.failures.map((f) => `<li><code>${esc(f.cell)}</code>: ${esc(f.message)}</li>`).join('')}</ul>`,
    );
  }
  if (b.provenance.length > 0) parts.push('<h3>Provenance</h3>', `<ul>${b.provenance.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`);
  return parts.join('\n');
}

/** The line under the title: what the report reproduces. */
const PAPER_NOTE =
  'Distribution matching for multi-task learning of classification tasks (Kollias et al., AAAI 2024), reproduced with mtl-bench.';

export function reportHtml(report: Report): string {
  const title = report.benchmarks.length === 1 ? `mtl-bench report: ${report.benchmarks[0]!.name}` : 'mtl-bench report';
  const warnings = report.warnings.length > 0 ? `<ul class="warn">${report.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '';
  const body = report.benchmarks.length > 0 ? report.benchmarks.map(benchmarkSection).join('\n') : '<p>No results found.</p>';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="note">${PAPER_NOTE}</p>
${warnings}
${report.sweeps.length > 0 ? `${sweepSection(report.sweeps)}\n` : ''}${body}
</body>
</html>
`;
}
