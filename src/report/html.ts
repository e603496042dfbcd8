import type { BenchmarkReport, Report } from './aggregate.js';
import { groupTitle, itemText, seedsText, type RunConfiguration } from './configuration.js';
import type { LeaderboardRow } from './leaderboard.js';
import { leftOutNotes, transferSentence, type SummaryRow } from './summary.js';
import { dotsWithBaselines, escapeXml as esc, groupedBars, lineChart } from './svg.js';

/**
 * report.html: one file that opens offline in any browser. Inline CSS and inline SVG only: no
 * script, no font, no stylesheet or image fetched from anywhere. It holds no timestamp, so the
 * same results always give the same file (merged shards equal a single run).
 */

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 24px; } p.note { color: #555; margin-top: 2px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: right; } th { background: #f6f6f6; }
td.text, th.text { text-align: left; }
.hurts { color: #b00020; font-weight: 600; } .helps { color: #1b7f2a; } .noise { color: #8a5a00; } .muted { color: #777; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { background: #fff; border: 1px solid #eee; }
svg .grid { stroke: #eee; } svg .zero { stroke: #444; } svg .tick { font-size: 11px; fill: #555; }
svg .axis { font-size: 12px; fill: #333; } svg .value { font-size: 9px; fill: #333; }
svg .stl { stroke: #7f7f7f; stroke-dasharray: 6 4; stroke-width: 1.5; } svg .paper { stroke: #b00020; stroke-dasharray: 2 3; stroke-width: 1.5; }
ul.warn li { color: #8a5a00; }
.scroll { overflow-x: auto; max-width: 100%; }
table.config td { vertical-align: top; }
`;

function num(value: number | undefined, decimals = 2, signed = false): string {
  if (value === undefined || !Number.isFinite(value)) return '<span class="muted">–</span>';
  const text = value.toFixed(decimals);
  return signed && value > 0 ? `+${text}` : text;
}

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

function summaryTable(rows: SummaryRow[]): string {
  const head = '<tr><th class="text">regime</th><th class="text">setting</th><th>Δm%</th><th>tasks worse than stl</th><th class="text">negative transfer</th><th>significant drops</th><th>train s / seed</th><th>seeds</th><th class="text">verdict</th></tr>';
  const body = rows
    .map((r) => {
      const cls = FINDING_CLASS[r.finding];
      const nt = r.negative_transfer === undefined ? '<span class="muted">–</span>' : r.negative_transfer ? `yes (${esc(r.worse_tasks.join(', '))})` : 'no';
      const sig = r.tasks_significantly_worse === undefined ? '<span class="muted">–</span>' : String(r.tasks_significantly_worse);
      return `<tr><td class="text">${esc(r.regime)}</td><td class="text">${esc(r.setting)}</td><td>${num(r.delta_m_pct, 2, true)}${r.delta_m_left_out.length > 0 && r.delta_m_pct !== undefined ? ` <span class="muted">w/o ${esc(r.delta_m_left_out.map((l) => l.task).join(', '))}</span>` : ''}</td><td>${r.tasks_worse_than_stl ?? '<span class="muted">–</span>'}</td><td class="text">${nt}</td><td>${sig}</td><td>${num(r.train_seconds, 1)}</td><td>${r.n}</td><td class="text ${cls}">${esc(r.verdict)}</td></tr>`;
    })
    .join('');
  return `<table>${head}${body}</table>`;
}

function leaderboardTable(rows: LeaderboardRow[]): string {
  const head = '<tr><th class="text">regime</th><th class="text">task</th><th class="text">metric</th><th class="text">setting</th><th>mean</th><th>std</th><th>n</th><th>stl</th><th>Δ vs stl</th><th>paper</th><th>gap to paper</th><th>rank</th></tr>';
  const body = rows
    .map(
      (r) =>
        `<tr><td class="text">${esc(r.regime)}</td><td class="text">${esc(r.task)}</td><td class="text">${esc(r.metric)}${r.primary ? ' ★' : ''}</td><td class="text">${esc(r.setting)}</td>` +
        `<td>${num(r.mean)}</td><td>${num(r.std)}</td><td>${r.n}</td><td>${num(r.stl_mean)}</td>` +
        `<td class="${r.delta_vs_stl !== undefined && r.delta_vs_stl < 0 && r.setting !== 'stl' ? 'hurts' : ''}">${r.setting === 'stl' ? '<span class="muted">–</span>' : num(r.delta_vs_stl, 2, true)}</td>` +
        `<td>${num(r.paper, 1)}</td><td>${num(r.gap_to_paper, 2, true)}</td><td>${r.rank}</td></tr>`,
    )
    .join('');
  return `<table>${head}${body}</table>`;
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
        : `<span class="noise">cells differ: ${item.values.map((v) => `${esc(v.value)} <span class="muted">(${v.cells.length}: ${esc(v.cells.slice(0, 3).join(', '))}${v.cells.length > 3 ? ', …' : ''})</span>`).join('; ')}</span>`;
    return `<tr><td class="text muted">${esc(group)}</td><td class="text">${esc(item.label)}</td><td class="text">${value}</td></tr>`;
  });
  rows.push(`<tr><td class="text muted">seeds</td><td class="text"></td><td class="text">${esc(seedsText(configuration))}</td></tr>`);
  return `<div class="scroll"><table class="config">${rows.join('')}</table></div>`;
}

function benchmarkSection(b: BenchmarkReport): string {
  const parts: string[] = [];
  parts.push(`<h2>${esc(b.name)}</h2>`);
  if (b.description) parts.push(`<p>${esc(b.description)} <span class="muted">(the benchmark file's description)</span></p>`);
  parts.push('<h3>Configuration that ran</h3>', '<p class="note">Read from the cells\' config.json, so command-line overrides such as <code>--epochs</code> show here.</p>', configurationTable(b.configuration));
  parts.push(
    `<p class="note">dataset ${esc(b.dataset)}; tasks ${b.tasks.map((t) => `${esc(t.name)} (primary ${esc(t.primary)})`).join(', ')}. ` +
      'Metrics in percent on the test split, checkpoint chosen on validation; mean ± sample std over seeds. ' +
      'Δm% = (100/T) Σ<sub>t</sub> (M<sub>t</sub> − M<sub>t</sub><sup>stl</sup>) / M<sub>t</sub><sup>stl</sup> on primary metrics; negative transfer = worse than stl on at least one task.</p>',
  );
  parts.push('<h3>Summary</h3>', summaryTable(b.summary));
  const transfer = transferSentence(b.summary);
  if (transfer) parts.push(`<p>${esc(transfer)}</p>`);
  const leftOut = leftOutNotes(b.summary);
  if (leftOut.length > 0) parts.push(`<ul class="warn">${leftOut.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  const mtlSettings = b.settings.filter((s) => s !== 'stl');
  const deltaChart = groupedBars({
    title: `${b.name}: Δm% against stl per setting and regime`,
    yLabel: 'Δm% vs stl',
    groups: b.regimes,
    series: mtlSettings,
    value: (regime, setting) => b.summary.find((r) => r.regime === regime && r.setting === setting)?.delta_m_pct,
  });
  if (deltaChart) parts.push('<h3>Δm% per setting and regime</h3>', `<div class="charts">${deltaChart}</div>`);

  parts.push('<h3>Each task against its single-task baseline and the paper</h3>');
  const taskCharts: string[] = [];
  for (const regime of b.regimes) {
    for (const task of b.tasks) {
      const rows = b.leaderboard.filter((r) => r.regime === regime && r.task === task.name && r.metric === task.primary);
      if (rows.length === 0) continue;
      taskCharts.push(
        dotsWithBaselines({
          title: `${regime}: ${task.name} ${task.primary}`,
          yLabel: `${task.name} ${task.primary} (%) · ${regime}`,
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
        const what = c.kind === 'validation' ? `${c.name} ${b.tasks.find((t) => t.name === c.name)?.primary ?? ''} on validation (%)` : `loss ${c.name}`;
        return lineChart({
          title: `${regime}: ${what}`,
          yLabel: `${what} · ${regime}`,
          series: c.series.map((s) => ({ name: s.setting, points: s.points.map((p) => ({ x: p.epoch, y: p.mean, low: p.low, high: p.high })) })),
        });
      })
      .filter((svg) => svg !== '');
    if (charts.length > 0) curveParts.push(`<h4>${esc(regime)}</h4>`, `<div class="charts">${charts.join('')}</div>`);
  }
  if (curveParts.length > 0) {
    parts.push(
      '<h3>Training curves</h3>',
      '<p class="note">Each task\'s primary metric on validation, and each loss term on its own (the supervised loss of a task; SCA and DM per direction, unweighted), per epoch: the line is the mean over seeds, the band spans the lowest to the highest seed.</p>',
      ...curveParts,
    );
  }

  parts.push('<h3>Leaderboard</h3>', leaderboardTable(b.leaderboard));
  if (b.failures.length > 0) {
    parts.push('<h3 class="hurts">Failed cells</h3>', `<ul>${b.failures.map((f) => `<li><code>${esc(f.cell)}</code>: ${esc(f.message)}</li>`).join('')}</ul>`);
  }
  if (b.provenance.length > 0) parts.push('<h3>Provenance</h3>', `<ul>${b.provenance.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`);
  return parts.join('\n');
}

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
<p class="note">Distribution matching for multi-task learning of classification tasks (Kollias et al., AAAI 2024), reproduced with mtl-bench.</p>
${warnings}
${body}
</body>
</html>
`;
}
