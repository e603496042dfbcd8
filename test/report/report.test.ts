import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Chalk } from 'chalk';
import { evaluateChecks } from '../../src/report/check.js';
import { runVerdict } from '../../src/bench/command.js';
import { runStudy } from '../../src/cli/run_study.js';
import { reportCommand } from '../../src/report/command.js';
import { configHash } from '../../src/runs/identity.js';
import { beginCell, finishCell, recordFailure, writeBenchmarkInfo, type BenchmarkInfo } from '../../src/runs/store.js';
import { buildReport } from '../../src/report/aggregate.js';
import { LEADERBOARD_COLUMNS } from '../../src/report/leaderboard.js';
import { deltaM } from '../../src/report/stats.js';
import { SUMMARY_COLUMNS } from '../../src/report/summary.js';
import { collectRuns } from '../../src/runs/collect.js';
import { writeReports } from '../../src/report/index.js';
import { summaryTable } from '../../src/report/terminal.js';
import type { CellConfig } from '../../src/config/cell.js';
import type { Setting } from '../../src/config/settings.js';
import type { CellResult } from '../../src/train/types.js';
import {
  FAKE_PROVENANCE,
  captureIO,
  fakeDeps,
  fakeTrainer,
  tempDir,
  toyBenchmarkYaml,
  writeBenchmark,
  handCellConfig,
} from '../bench/doubles.js';

const INFO: BenchmarkInfo = {
  name: 'hand',
  description: 'hand-computed values',
  file: 'hand.yaml',
  dataset: 'toy',
  tasks: [
    { name: 'group', kind: 'categorical', primary: 'accuracy' },
    { name: 'tags', kind: 'multilabel', primary: 'macro_f1' },
  ],
  regimes: ['full'],
  settings: ['stl', 'mtl', 'mtl+sca', 'mtl+dm'],
  seeds: [1, 2],
  reference: { group: { accuracy: 70 } },
  check: [],
};

function handConfig(setting: Setting, seed: number): CellConfig {
  const tasks: CellConfig['tasks'] = [
    { name: 'group', primary: 'accuracy' },
    { name: 'tags', primary: 'macro_f1' },
  ];
  return handCellConfig({ benchmark: 'hand', tasks, relatedness: [], regime: { name: 'full', spec: { kind: 'full' } }, setting, seed });
}

function handResult(group: number, tags: number, trainSeconds: number, coupled = false): CellResult {
  return {
    test: { group: { accuracy: group, macro_f1: group - 0.1 }, tags: { macro_f1: tags, label_accuracy: 0.9 } },
    val: { group: { accuracy: group }, tags: { macro_f1: tags } },
    bestEpoch: 2,
    selectionRule: 'best mean primary metric on val',
    history: [1, 2].map((epoch) => ({
      epoch,
      loss: 2 / epoch,
      terms: {
        'sup:group': 1 / epoch,
        'sup:tags': group / epoch,
        ...(coupled ? { 'sca:group->tags': tags / epoch, sca: tags / epoch } : {}),
      },
      val: { group: { accuracy: (group * epoch) / 2 }, tags: { macro_f1: (tags * epoch) / 2 } },
      valPrimaryMean: ((group + tags) * epoch) / 4,
      seconds: 1,
      imagesPerSecond: 10,
    })),
    relatedness: {},
    labelCounts: { group: 10, tags: 10 },
    trainSeconds,
  };
}

/** setting → per seed [group accuracy, tags macro-F1] as fractions. */
const HAND: Record<string, [number, number][]> = {
  stl: [
    [0.58, 0.4],
    [0.62, 0.4],
  ],
  mtl: [
    [0.66, 0.38],
    [0.66, 0.38],
  ],
  'mtl+sca': [
    [0.6, 0.4],
    [0.6, 0.4],
  ],
  'mtl+dm': [
    [0.63, 0.42],
    [0.63, 0.44],
  ],
};

async function writeHandRuns(
  root: string,
  options: { failing?: boolean; table?: Record<string, [number, number][]>; info?: BenchmarkInfo } = {},
): Promise<string> {
  const dir = path.join(root, 'hand');
  await writeBenchmarkInfo(dir, options.info ?? INFO);
  for (const [setting, seeds] of Object.entries(options.table ?? HAND)) {
    for (const [i, [group, tags]] of seeds.entries()) {
      const config = handConfig(setting as Setting, i + 1);
      const cellDir = path.join(dir, `full.${setting}.seed${i + 1}`);
      await beginCell(cellDir, config, configHash(config));
      const timings = { startedAt: '', finishedAt: '', wallSeconds: 1, trainSeconds: 10 + i };
      await finishCell(cellDir, configHash(config), handResult(group, tags, 10 + i * 2, setting.includes('sca')), timings, FAKE_PROVENANCE);
    }
  }
  if (options.failing) {
    const config = handConfig('mtl+sca+dm', 1);
    const cellDir = path.join(dir, 'full.mtl+sca+dm.seed1');
    await beginCell(cellDir, config, configHash(config));
    await recordFailure(cellDir, configHash(config), new Error('out of memory'), FAKE_PROVENANCE);
  }
  return dir;
}

/** RFC 4180 as csv-stringify writes it: a field with a comma or quote is quoted, quotes doubled. */
function csvRows(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .map((line) =>
      [...line.matchAll(/(?:^|,)("(?:[^"]|"")*"|[^,]*)/g)].map((m) =>
        m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!,
      ),
    );
}

test('Δm% follows method.md: (100/T) Σ (M − M_stl) / M_stl', () => {
  assert.equal(deltaM([66, 38], [60, 40]), 2.5);
  assert.equal(deltaM([63, 43], [60, 40]), 6.25);
  assert.equal(deltaM([60], [0]), undefined, 'undefined, not infinite, against a zero baseline');
});

test('leaderboard and summary: exact leading columns and hand-computed values', async () => {
  const root = tempDir('hand');
  const dir = await writeHandRuns(root, { failing: true });
  await writeReports([dir], dir);
  const leaderboard = csvRows(fs.readFileSync(path.join(dir, 'leaderboard.csv'), 'utf8'));
  assert.deepEqual(leaderboard[0]!.slice(0, LEADERBOARD_COLUMNS.length), [
    'benchmark',
    'regime',
    'setting',
    'task',
    'metric',
    'mean',
    'std',
    'n',
    'stl_mean',
    'delta_vs_stl',
    'paper',
    'gap_to_paper',
    'rank',
  ]);
  const row = (setting: string, task: string, metric: string) => {
    const found = leaderboard.find((r) => r[2] === setting && r[3] === task && r[4] === metric);
    assert.ok(found, `${setting} ${task} ${metric}`);
    return Object.fromEntries(leaderboard[0]!.map((h, i) => [h, found[i]]));
  };
  assert.deepEqual(row('stl', 'group', 'accuracy'), {
    benchmark: 'hand',
    regime: 'full',
    setting: 'stl',
    task: 'group',
    metric: 'accuracy',
    mean: '60.00',
    std: '2.83',
    n: '2',
    stl_mean: '60.00',
    delta_vs_stl: '0.00',
    paper: '70.00',
    gap_to_paper: '-10.00',
    rank: '3',
    // 60 ± t(0.975, 1) × 2.8284 / √2 = 60 ± 25.41
    ci_low: '34.59',
    ci_high: '85.41',
    paired_seeds: '',
    diff_mean: '',
    diff_ci_low: '',
    diff_ci_high: '',
    diff_p: '',
    verdict: 'baseline',
    primary: 'true',
    seeds: '1 2',
  });
  // Paired by seed: differences 8 and 4, mean 6, t = 6 / (2.8284 / √2) = 3, p = 1 − (2/π) atan 3 (one degree of freedom).
  assert.deepEqual(
    [
      row('mtl', 'group', 'accuracy').paired_seeds,
      row('mtl', 'group', 'accuracy').diff_mean,
      row('mtl', 'group', 'accuracy').diff_ci_low,
      row('mtl', 'group', 'accuracy').diff_ci_high,
    ],
    ['2', '6.00', '-19.41', '31.41'],
  );
  assert.equal(row('mtl', 'group', 'accuracy').diff_p, (1 - (2 / Math.PI) * Math.atan(3)).toFixed(4));
  assert.equal(row('mtl', 'group', 'accuracy').verdict, 'no detectable difference (p = 0.2)');
  assert.equal(row('mtl', 'group', 'accuracy').rank, '1');
  assert.equal(row('mtl', 'group', 'accuracy').delta_vs_stl, '6.00');
  assert.equal(row('mtl', 'group', 'accuracy').gap_to_paper, '-4.00');
  assert.equal(row('mtl+dm', 'group', 'accuracy').rank, '2');
  assert.equal(row('mtl+sca', 'group', 'accuracy').rank, '3', 'ties share a rank');
  assert.equal(row('mtl+sca', 'group', 'accuracy').verdict, 'no detectable difference (p = 1)', 'differences +2 and -2');
  assert.equal(row('mtl', 'tags', 'macro_f1').delta_vs_stl, '-2.00');
  // -2 on both seeds: no spread, so t is infinite.
  assert.equal(row('mtl', 'tags', 'macro_f1').verdict, 'worse than stl (significant, p < 0.001)');
  assert.equal(row('mtl', 'tags', 'macro_f1').paper, '', 'no paper value, empty cell');
  assert.equal(row('mtl+dm', 'tags', 'macro_f1').std, '1.41');
  assert.equal(row('mtl', 'group', 'macro_f1').primary, 'false');

  const summary = csvRows(fs.readFileSync(path.join(dir, 'summary.csv'), 'utf8'));
  assert.deepEqual(summary[0]!.slice(0, SUMMARY_COLUMNS.length), [
    'benchmark',
    'regime',
    'setting',
    'delta_m_pct',
    'tasks_worse_than_stl',
    'negative_transfer',
    'train_seconds',
  ]);
  const s = (setting: string) => summary.find((r) => r[2] === setting)!.slice(0, 7);
  assert.deepEqual(s('stl'), ['hand', 'full', 'stl', '', '', '', '11.00']);
  assert.deepEqual(s('mtl'), ['hand', 'full', 'mtl', '2.50', '1', 'true', '11.00']);
  assert.deepEqual(s('mtl+sca'), ['hand', 'full', 'mtl+sca', '0.00', '0', 'false', '11.00'], 'equal to stl is not worse');
  assert.deepEqual(s('mtl+dm'), ['hand', 'full', 'mtl+dm', '6.25', '0', 'false', '11.00']);
  const failedRow = summary.find((r) => r[2] === 'mtl+sca+dm')!;
  assert.equal(failedRow[3], '');
  assert.match(failedRow.join(','), /1 cell failed/);
  const report = buildReport(collectRuns([dir]));
  const mtl = report.benchmarks[0]!.summary.find((r) => r.setting === 'mtl')!;
  assert.deepEqual(mtl.worse_tasks, ['tags']);
  // Δm% per seed: seed 1 50 × (8/58 − 0.05) = 4.3966, seed 2 50 × (4/62 − 0.05) = 0.7258; their mean 2.5612,
  // std 2.5956, interval ± 12.7062 × 2.5956 / √2, t = 2.5612 / 1.8354.
  assert.equal(mtl.paired_seeds, 2);
  assert.ok(Math.abs(mtl.delta_m_seeds!.mean - 2.561179) < 1e-6);
  assert.ok(Math.abs(mtl.delta_m_seeds!.ci!.low - -20.759441) < 1e-5);
  assert.ok(Math.abs(mtl.delta_m_seeds!.p! - 0.395843) < 1e-6);
  assert.equal(mtl.tasks_significantly_worse, 1);
  assert.equal(mtl.significant_negative_transfer, true);
  assert.equal(
    mtl.verdict,
    'worse than stl (significant) on tags macro_f1 (-2.00 pts, p < 0.001); delta_m +2.50% (95% CI -20.76 to 25.88, p = 0.4)',
  );
  const dm = report.benchmarks[0]!.summary.find((r) => r.setting === 'mtl+dm')!;
  assert.equal(dm.finding, 'no-difference');
  assert.equal(dm.tasks_significantly_worse, 0);
  const mtlCsv = Object.fromEntries(summary[0]!.map((h, i) => [h, summary.find((r) => r[2] === 'mtl')![i]]));
  assert.deepEqual(
    [
      mtlCsv.n,
      mtlCsv.paired_seeds,
      mtlCsv.delta_m_seed_mean,
      mtlCsv.delta_m_ci_low,
      mtlCsv.delta_m_ci_high,
      mtlCsv.delta_m_p,
      mtlCsv.delta_m_left_out,
      mtlCsv.tasks_significantly_worse,
      mtlCsv.significant_negative_transfer,
    ],
    ['2', '2', '2.56', '-20.76', '25.88', '0.3958', '', '1', 'true'],
  );
  // Ranked by Δm% within the regime: mtl+dm 6.25, mtl 2.50, mtl+sca 0.00; stl and the failed setting have none.
  const rankOf = (setting: string) => summary.find((r) => r[2] === setting)![summary[0]!.indexOf('rank_delta_m')];
  assert.deepEqual(['mtl+dm', 'mtl', 'mtl+sca', 'stl', 'mtl+sca+dm'].map(rankOf), ['1', '2', '3', '', '']);
  for (const file of ['leaderboard.csv', 'summary.csv']) {
    assert.match(fs.readFileSync(path.join(dir, file), 'utf8'), /^[\x20-\x7e\n]*$/, `${file} is plain ASCII`);
  }
});

test('Δm% leaves out a task whose stl baseline is 0, under 1 point or at chance, and says so everywhere', async () => {
  const info: BenchmarkInfo = {
    ...INFO,
    tasks: [
      { ...INFO.tasks[0]!, classes: 4 },
      { ...INFO.tasks[1]!, classes: 32 },
    ],
  };
  const cases: { name: string; table: Record<string, [number, number][]>; reason: RegExp; deltaM: string }[] = [
    {
      name: 'an stl macro-F1 of exactly 0',
      table: {
        stl: [
          [0.6, 0],
          [0.6, 0],
        ],
        mtl: [
          [0.63, 0.02],
          [0.63, 0.01],
        ],
      },
      reason: /^tags: stl macro_f1 0\.00% on seed 1 is under 1 point$/,
      deltaM: '5.00', // group only: (63 − 60) / 60
    },
    {
      name: 'an stl macro-F1 near 0 on one seed',
      table: {
        stl: [
          [0.6, 0.3],
          [0.6, 0.004],
        ],
        mtl: [
          [0.63, 0.3],
          [0.63, 0.05],
        ],
      },
      reason: /^tags: stl macro_f1 0\.40% on seed 2 is under 1 point$/,
      deltaM: '5.00', // with tags it would be about +600%
    },
    {
      name: 'an stl accuracy at chance (4 groups)',
      table: {
        stl: [
          [0.25, 0.4],
          [0.3, 0.4],
        ],
        mtl: [
          [0.5, 0.44],
          [0.5, 0.44],
        ],
      },
      reason: /^group: stl accuracy 25\.00% on seed 1 is at or below chance \(25\.00%, 1 of 4 classes\)$/,
      deltaM: '10.00', // tags only: (44 − 40) / 40
    },
  ];
  for (const c of cases) {
    const dir = await writeHandRuns(tempDir('floor'), { table: c.table, info });
    const written = await writeReports([dir], dir);
    const mtl = written.report.benchmarks[0]!.summary.find((r) => r.setting === 'mtl')!;
    assert.equal(mtl.delta_m_left_out.length, 1, c.name);
    assert.match(mtl.delta_m_left_out[0]!.reason, c.reason, c.name);
    const summary = csvRows(fs.readFileSync(path.join(dir, 'summary.csv'), 'utf8'));
    const row = Object.fromEntries(summary[0]!.map((h, i) => [h, summary.find((r) => r[2] === 'mtl')![i]]));
    assert.equal(row.delta_m_pct, c.deltaM, c.name);
    assert.match(row.delta_m_left_out!, c.reason, `${c.name}: the CSV names the task and why`);
    assert.match(row.verdict!, /left out of delta_m: /, c.name);
    const terminal = summaryTable(written.report, new Chalk({ level: 0 })).replace(/\s+/g, ' ');
    assert.ok(terminal.includes(mtl.delta_m_left_out[0]!.reason), `${c.name}: the terminal says it:\n${terminal}`);
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    assert.ok(html.includes(mtl.delta_m_left_out[0]!.reason), `${c.name}: report.html says it`);
  }
  // Both tasks below their floor: no Δm% at all, rather than a number that means nothing.
  const dir = await writeHandRuns(tempDir('floor'), {
    table: {
      stl: [
        [0.2, 0],
        [0.2, 0],
      ],
      mtl: [
        [0.3, 0.1],
        [0.3, 0.1],
      ],
    },
    info,
  });
  const mtl = buildReport(collectRuns([dir])).benchmarks[0]!.summary.find((r) => r.setting === 'mtl')!;
  assert.equal(mtl.delta_m_pct, undefined);
  assert.equal(mtl.delta_m_left_out.length, 2);
  assert.match(mtl.verdict, /delta_m undefined: no task has a usable stl baseline/);
});

test('report.html is one self-contained file with the charts', async () => {
  const root = tempDir('html');
  const dir = await writeHandRuns(root);
  await writeReports([dir], dir);
  const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
  assert.match(html, /^<!DOCTYPE html>/);
  for (const forbidden of [
    /https?:/i,
    /<script/i,
    /<link/i,
    /\bsrc\s*=/i,
    /url\(/i,
    /@import/i,
    /<iframe/i,
    /<object/i,
    /xlink:href/i,
    /\bhref\s*=/i,
  ]) {
    assert.doesNotMatch(html, forbidden, `no external reference: ${forbidden}`);
  }
  const charts = html.match(/<svg /g) ?? [];
  // Δm% chart, one chart per (regime, task), and per regime the validation curve of each task and one per loss term
  // (sup:group, sup:tags, sca:group->tags; the sum "sca" is not drawn).
  assert.equal(charts.length, 1 + 2 + 2 + 3);
  assert.match(html, /aria-label="full: loss sca:group-&gt;tags"/);
  assert.match(html, /aria-label="full: group accuracy on validation"/);
  assert.match(html, /<polygon [^>]*class="band"/, 'the spread over seeds is drawn');
  assert.match(html, /Δm% per setting and regime/);
  assert.match(html, /class="paper"/, 'the paper value is drawn');
  assert.match(html, /class="stl"/, 'the stl baseline is drawn');
  assert.match(
    html,
    new RegExp(
      'a lower mean than stl on at least one task\\): 1 of 3 multi-task rows \\(mtl in full: tags\\)\\. ' +
        'Significant drops \\(paired t-test over seeds, p &lt; 0\\.05\\): 1 of 3 rows with two or more seeds \\(mtl in full\\)\\.',
    ),
  );
  assert.match(html, /<path d="M/, 'training curves');
});

test('the terminal table is plain when colour is off and says when a setting hurts', async () => {
  const root = tempDir('term');
  const dir = await writeHandRuns(root);
  const report = buildReport(collectRuns([dir]));
  const plain = summaryTable(report, new Chalk({ level: 0 }));
  assert.doesNotMatch(plain, /\u001b\[/);
  // Each task's primary metric with half its 95% interval, beside Δm% and its per-seed interval.
  assert.match(plain, /group accuracy\s+tags macro_f1\s+Δm%\s+Δm% 95% CI\s+neg\. transfer\s+finding\s+seeds/);
  assert.match(plain, /full\s+stl\s+60\.00 ±25\.41\s+40\.00 ±0\.00\s+–\s+–\s+baseline\s+baseline\s+2/);
  assert.match(plain, /full\s+mtl\s+66\.00 ±0\.00\s+38\.00 ±0\.00\s+\+2\.50\s+\[-20\.76, \+25\.88\]\s+yes: tags\s+significant drop\s+2/);
  assert.match(plain, /full\s+mtl\+dm\s+63\.00 ±0\.00\s+43\.00 ±12\.71\s+\+6\.25\s+\[.+\]\s+no\s+no detectable difference\s+2/);
  assert.match(
    plain.replace(/\s+/g, ' '),
    /Significant drops \(paired t-test over seeds, p < 0\.05\): 1 of 3 rows with two or more seeds \(mtl in full\)\./,
  );
  const coloured = summaryTable(report, new Chalk({ level: 1 }));
  assert.match(coloured, /\u001b\[31m/, 'red for harm');
  // Same columns: removing the colour codes gives the plain table back.
  assert.equal(coloured.replace(/\u001b\[\d+m/g, ''), plain);
});

test('one seed: no interval, no significance, and no colour of a finding', async () => {
  const dir = await writeHandRuns(tempDir('one-seed'), { table: { stl: [[0.6, 0.4]], mtl: [[0.5, 0.38]] } });
  const report = buildReport(collectRuns([dir]));
  const mtl = report.benchmarks[0]!.summary.find((r) => r.setting === 'mtl')!;
  assert.equal(mtl.finding, 'one-seed');
  assert.equal(mtl.negative_transfer, true, "the paper's definition still applies");
  assert.equal(mtl.tasks_significantly_worse, undefined, 'nothing can be counted as significant');
  assert.equal(
    mtl.verdict,
    '1 seed: no uncertainty estimate; lower than stl on group accuracy (-10.00 pts), tags macro_f1 (-2.00 pts); delta_m -10.83%',
  );
  const row = report.benchmarks[0]!.leaderboard.find((r) => r.setting === 'mtl' && r.metric === 'accuracy')!;
  assert.equal(row.verdict, '1 seed: no uncertainty estimate');
  assert.equal(row.ci, undefined);
  const coloured = summaryTable(report, new Chalk({ level: 1 }));
  const line = coloured.split('\n').find((l) => l.includes('mtl') && l.includes('1 seed'))!;
  assert.ok(line, coloured);
  assert.doesNotMatch(line, /\u001b\[3[12]m/, 'neither red nor green');
  assert.match(line, /\u001b\[2m1 seed: no estimate/, 'dim');
  assert.match(coloured.replace(/\s+/g, ' '), /None of it can be called significant: every row has a single seed\./);
});

test('reports from the folders of two shards equal the report of one run', async () => {
  const dir = tempDir('shards');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const single = path.join(dir, 'single');
  await runStudy([file], { out: single }, fakeDeps(fakeTrainer()), captureIO());
  const shardDirs = ['1/2', '2/2'].map((shard, i) => path.join(dir, `shard${i + 1}`));
  const trainers = [fakeTrainer(), fakeTrainer()];
  for (const [i, shard] of ['1/2', '2/2'].entries())
    await runStudy([file], { out: shardDirs[i], shard }, fakeDeps(trainers[i]!), captureIO());
  assert.equal(trainers[0]!.calls.length + trainers[1]!.calls.length, 20);
  assert.ok(trainers[0]!.calls.length > 0 && trainers[1]!.calls.length > 0);
  const merged = path.join(dir, 'merged');
  const io = captureIO();
  await reportCommand(
    shardDirs.map((d) => path.join(d, 'toy-study')),
    { out: merged },
    io,
  );
  for (const name of ['leaderboard.csv', 'summary.csv', 'report.html']) {
    assert.equal(fs.readFileSync(path.join(merged, name), 'utf8'), fs.readFileSync(path.join(single, 'toy-study', name), 'utf8'), name);
  }
  // A runs/ root with both shard folders inside gives the same result too.
  await reportCommand([dir + '/shard1', dir + '/shard2'], { out: path.join(dir, 'merged2') }, captureIO());
  assert.equal(
    fs.readFileSync(path.join(dir, 'merged2', 'summary.csv'), 'utf8'),
    fs.readFileSync(path.join(merged, 'summary.csv'), 'utf8'),
  );
  await assert.rejects(
    reportCommand(shardDirs, {}, captureIO()),
    /several folders are merged into one report; say where it goes with --out DIR/,
  );
  await assert.rejects(reportCommand([path.join(dir, 'nothing')], {}, captureIO()), /nothing: no such folder/);
});

test('two folders holding the same cell under different configs cannot be merged', async () => {
  const dir = tempDir('conflict');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  await runStudy([file], { out: path.join(dir, 'a'), regimes: ['full'], seeds: ['1'] }, fakeDeps(fakeTrainer()), captureIO());
  await runStudy([file], { out: path.join(dir, 'b'), regimes: ['full'], seeds: ['1'], epochs: 3 }, fakeDeps(fakeTrainer()), captureIO());
  await assert.rejects(
    reportCommand([path.join(dir, 'a'), path.join(dir, 'b')], { out: path.join(dir, 'm') }, captureIO()),
    /hold the same cell trained with different configs/,
  );
});

test('the header and report.html show the configuration the cells ran with, --epochs included, and say when cells differ', async () => {
  const dir = tempDir('config');
  const file = writeBenchmark(dir, toyBenchmarkYaml('method: { lambda_dm: 0.5 }\n'));
  const out = path.join(dir, 'runs');
  const io = captureIO();
  await runStudy([file], { out, regimes: ['disjoint'], seeds: ['1'], epochs: 1 }, fakeDeps(fakeTrainer()), io);
  // Unwrapped, so the assertions do not depend on where the lines break.
  const header = io.out.join('').replace(/\n {6}/g, ' ');
  assert.match(header, /toy-study {2}\(benchmark file: a toy study for tests\)/);
  assert.match(
    header,
    /training: epochs 1, batch 16, optimizer adam, learning rate 0\.001 \(cosine\), weight decay 0, augmentation none/,
    "the overridden epochs, not the file's 2",
  );
  assert.match(header, /data and model: dataset toy, tasks group \(accuracy\), tags \(macro_f1\), backbone convnet-s, input size 8x8/);
  // lambda_dm is read by the DM settings only; the others carry the default, which is no disagreement.
  assert.match(header, /lambda_dm 0\.5/);
  assert.match(header, /relatedness: group->tags from data \(alpha 1, min_coannotated 5\)/);
  assert.match(header, /regimes: disjoint with overlap 0\.2/);
  assert.match(header, /seeds: 1\n/);
  assert.doesNotMatch(header, /different configurations/);
  const html = fs.readFileSync(path.join(out, 'toy-study', 'report.html'), 'utf8');
  assert.match(html, /<h3>Configuration that ran<\/h3>/);
  assert.match(html, /<td class="text">epochs<\/td><td class="text">1<\/td>/);

  // A second run of another seed without the override: the cells now disagree, and the reports say where.
  const again = captureIO();
  await runStudy([file], { out, regimes: ['disjoint'], seeds: ['2'] }, fakeDeps(fakeTrainer()), again);
  const text = again.out.join('').replace(/\s+/g, ' ');
  assert.match(text, /epochs 1 in 5 cells, 2 in 5 cells/);
  assert.match(
    text,
    new RegExp(
      'warning: benchmark "toy-study": its cells ran with different configurations \\(e\\.g\\. a changed --epochs\\): ' +
        'epochs: 1 in 5 cells, 2 in 5 cells \\(e\\.g\\. disjoint\\.\\S+\\.seed2\\)',
    ),
  );
  assert.match(
    fs.readFileSync(path.join(out, 'toy-study', 'report.html'), 'utf8'),
    /cells differ: 1 <span class="muted">\(5: disjoint\.mtl\+dm\.seed1/,
  );
});

test('--check names each value out of tolerance and fails the run', async () => {
  const dir = tempDir('check');
  const checks = `check:
  - { regime: full, setting: mtl, task: group, metric: accuracy, expected: 61.5, tolerance: 3 }
  - { regime: full, setting: mtl, task: tags, metric: macro_f1, expected: 80, tolerance: 5 }
  - { regime: disjoint, setting: stl, task: group, metric: accuracy, expected: 20, tolerance: 2 }
`;
  const file = writeBenchmark(dir, toyBenchmarkYaml(checks));
  const io = captureIO();
  const result = await runStudy([file], { out: path.join(dir, 'runs'), check: true }, fakeDeps(fakeTrainer()), io);
  assert.deepEqual(result.problems, ['--check: 2 values out of tolerance']);
  const failures = io.err
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('check failed: '));
  assert.equal(failures.length, 2);
  assert.match(failures[0]!, /^check failed: toy-study: full\/mtl\/tags macro_f1 = \d+\.\d\d, expected 80 ± 5 \(off by -\d+\.\d\d\)$/);
  assert.match(failures[1]!, /^check failed: toy-study: disjoint\/stl\/group accuracy = \d+\.\d\d, expected 20 ± 2/);
  assert.match(runVerdict(result)!.message, /--check: 2 values out of tolerance/);

  // A value with no result fails as well.
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'runs', 'toy-study', 'benchmark.json'), 'utf8')) as BenchmarkInfo;
  const empty = evaluateChecks(info, { benchmarks: [], sweeps: [], warnings: [] });
  assert.equal(empty.failures.length, 3);
  assert.match(empty.failures[0]!.message, /no result/);
});
