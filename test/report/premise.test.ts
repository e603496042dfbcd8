import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Chalk } from 'chalk';
import type { CellConfig } from '../../src/config/cell.js';
import type { Setting } from '../../src/config/settings.js';
import { buildReport } from '../../src/report/aggregate.js';
import { reportAcrossRuns } from '../../src/report/command.js';
import { configHash } from '../../src/runs/identity.js';
import { beginCell, finishCell } from '../../src/runs/store.js';
import type { CellResult } from '../../src/train/types.js';
import { FAKE_PROVENANCE, captureIO, tempDir, handCellConfig } from '../bench/doubles.js';
import { summaryCsv } from '../../src/report/csv.js';
import { reportHtml } from '../../src/report/html.js';
import { summaryTable } from '../../src/report/terminal.js';
import type { CellRecord, MetricsFile } from '../../src/runs/store.js';
import type { EpochRecord } from '../../src/train/types.js';

/** Two tasks, subgroup and group, related subgroup->group from a file table blended with `beta`. */
function config(benchmark: string, setting: Setting, seed: number, beta: number): CellConfig {
  const tasks: CellConfig['tasks'] = [
    { name: 'subgroup', primary: 'accuracy' },
    { name: 'group', primary: 'accuracy' },
  ];
  const pair = {
    from: 'subgroup',
    to: 'group',
    source: 'file' as const,
    alpha: 1,
    minCoannotated: 20,
    ...(beta === 0 ? {} : { sharpnessBlend: beta }),
  };
  const regime = { name: 'disjoint', spec: { kind: 'disjoint' as const, overlap: 0.05 } };
  return handCellConfig({ benchmark, tasks, relatedness: setting === 'stl' ? [] : [pair], regime, setting, seed });
}

function history(group: number, teacher: number | undefined): EpochRecord[] {
  return [1, 2].map((epoch) => ({
    epoch,
    loss: 2 / epoch,
    terms: { 'sup:subgroup': 1 / epoch, 'sup:group': 1 / epoch },
    val: { subgroup: { accuracy: 0.4 }, group: { accuracy: group } },
    valPrimaryMean: (0.4 + group) / 2,
    ...(teacher === undefined ? {} : { teachers: { 'dm:subgroup->group': { accuracy: teacher, macro_f1: teacher } } }),
    seconds: 1,
    imagesPerSecond: 1,
  }));
}

function cell(
  benchmark: string,
  setting: Setting,
  seed: number,
  beta: number,
  subgroup: number,
  group: number,
  unstable = false,
): CellRecord {
  const coupled = setting !== 'stl';
  const metrics: MetricsFile = {
    configHash: `${benchmark}-${setting}-${seed}`,
    test: { subgroup: { accuracy: subgroup }, group: { accuracy: group } },
    val: { subgroup: { accuracy: subgroup }, group: { accuracy: group } },
    bestEpoch: 2,
    selectionRule: 'best',
    labelCounts: {},
    trainSeconds: 1,
    ...(coupled
      ? {
          relatedness: {
            'subgroup->group': {
              kind: 'categorical->categorical',
              sharpness: 1 - beta,
              uninformedSharpness: 0.04,
              entriesAboveHalf: beta < 0.5 ? 95 : 0,
              entries: 760,
              source: 'file',
              description: 'the taxonomy',
              ...(beta === 0 ? {} : { blend: beta }),
            },
          },
        }
      : {}),
    stability: unstable
      ? { unstable: true, reasons: ['mtl: validation group accuracy fell 49.0 points from epoch 1 to 2 (56.0% → 7.0%)'] }
      : { unstable: false, reasons: [] },
  };
  return {
    dir: '',
    config: config(benchmark, setting, seed, beta),
    hash: metrics.configHash,
    metrics,
    history: history(group, coupled ? group - 0.1 : undefined),
  };
}

function cells(): CellRecord[] {
  const out: CellRecord[] = [];
  for (const [name, beta, dm] of [
    ['sweep-b0', 0, [0.44, 0.66]],
    ['sweep-b1', 1, [0.4, 0.6]],
  ] as const) {
    out.push(cell(name, 'stl', 1, beta, 0.4, 0.6), cell(name, 'stl', 2, beta, 0.4, 0.6));
    out.push(cell(name, 'mtl+dm', 1, beta, dm[0], dm[1]), cell(name, 'mtl+dm', 2, beta, dm[0], dm[1]));
  }
  // A collapsed third seed of β = 0: flagged by its trainer, it must change no number.
  out.push(cell('sweep-b0', 'stl', 3, 0, 0.4, 0.6), cell('sweep-b0', 'mtl+dm', 3, 0, 0.05, 0.07, true));
  return out;
}

test('an unstable cell is left out of every number and named; the diagnostic, the teachers and Δm% against β are reported', () => {
  const report = buildReport({ cells: cells(), benchmarks: new Map(), warnings: [] });
  const b0 = report.benchmarks.find((b) => b.name === 'sweep-b0')!;
  const dm = b0.summary.find((r) => r.setting === 'mtl+dm')!;
  assert.equal(dm.n, 2, 'the unstable seed is not counted');
  assert.equal(dm.unstable_cells, 1);
  // Δm% = 100/2 · ((44 − 40)/40 + (66 − 60)/60) = 10, as without the collapsed seed.
  assert.ok(Math.abs(dm.delta_m_pct! - 10) < 1e-9, `Δm% ${dm.delta_m_pct}`);
  assert.match(dm.verdict, /left out as unstable: seed 3/);
  assert.deepEqual(b0.unstable, [
    {
      cell: 'disjoint.mtl+dm.seed3',
      reasons: ['mtl: validation group accuracy fell 49.0 points from epoch 1 to 2 (56.0% → 7.0%)'],
      kept: [],
    },
  ]);
  assert.match(summaryCsv(report).split('\n')[0]!, /,unstable_cells,/);

  assert.equal(b0.relatedness.length, 1);
  assert.deepEqual(
    { ...b0.relatedness[0]!, description: undefined },
    {
      pair: 'subgroup->group',
      kind: 'categorical->categorical',
      source: 'file',
      description: undefined,
      blend: 0,
      sharpness: 1,
      uninformedSharpness: 0.04,
      entriesAboveHalf: 95,
      entries: 760,
      cells: 2,
    },
  );

  assert.equal(b0.teachers.length, 1);
  assert.equal(b0.teachers[0]!.teacher.at(-1)!.mean.toFixed(2), '56.00');
  assert.deepEqual(b0.teacherFindings, [
    'disjoint, mtl+dm: the dm:subgroup->group teacher scores below its student at epoch 2 ' +
      '(group accuracy on validation 56.00 against 66.00, mean of 2 seeds): ' +
      'distribution matching pulls the group head toward something worse than itself.',
  ]);

  assert.equal(report.sweeps.length, 1);
  const [sweep] = report.sweeps;
  assert.equal(sweep!.regime, 'disjoint');
  assert.deepEqual(
    sweep!.series.map((s) => [s.setting, s.points.map((p) => [p.beta, p.benchmark, Number(p.deltaM!.toFixed(6)), p.n])]),
    [
      [
        'mtl+dm',
        [
          [0, 'sweep-b0', 10, 2],
          [1, 'sweep-b1', 0, 2],
        ],
      ],
    ],
  );

  const html = reportHtml(report);
  assert.match(html, /Δm% against the sharpness of the relatedness/);
  assert.match(html, /Relatedness: how crisp, and from where/);
  assert.match(html, /Unstable cells, left out of every number above/);
  assert.match(html, /Teachers and their students/);
  assert.match(html, /teacher scores below its student/);
  const text = summaryTable(report, new Chalk({ level: 0 }));
  assert.match(text, /subgroup->group: sharpness 1\.00 \(uninformed 0\.04\), 95\/760 entries above 0\.5, file \(the taxonomy\)/);
  assert.match(text, /unstable, left out of every number above: disjoint\.mtl\+dm\.seed3/);
  assert.match(text, /disjoint mtl\+dm: β 0: \+10\.00 \[\+10\.00, \+10\.00\]; β 1: 0\.00 \[0\.00, 0\.00\]/);
});

test("an stl cell with one collapsed network keeps its other network's results; a multi-task cell loses all", () => {
  const groupOnly = { unstable: true, reasons: ['group: validation group accuracy fell more than 20 points between two epochs 2 times'] };
  const all = [
    ...cells().filter((c) => c.config.benchmark === 'sweep-b1'),
    // Seed 3 of stl: its group network collapsed (an old record without `networks`), its subgroup network did not.
    {
      ...cell('sweep-b1', 'stl', 3, 1, 0.7, 0.01),
      metrics: { ...cell('sweep-b1', 'stl', 3, 1, 0.7, 0.01).metrics!, stability: groupOnly },
    },
  ];
  const b1 = buildReport({ cells: all, benchmarks: new Map(), warnings: [] }).benchmarks[0]!;
  const stl = (task: string) => b1.leaderboard.find((r) => r.setting === 'stl' && r.task === task && r.metric === 'accuracy')!;
  assert.deepEqual([stl('subgroup').n, stl('group').n], [3, 2]);
  assert.ok(Math.abs(stl('subgroup').mean - 50) < 1e-9, 'the subgroup network of seed 3 (70%) counts');
  assert.ok(Math.abs(stl('group').mean - 60) < 1e-9, 'the collapsed group network (1%) does not');
  const row = b1.summary.find((r) => r.setting === 'stl')!;
  assert.equal(row.n, 3);
  assert.equal(row.unstable_cells, 1);
  assert.match(row.verdict, /left out as unstable: seed 3 \(its group network\)/);
  assert.deepEqual(b1.unstable, [{ cell: 'disjoint.stl.seed3', reasons: groupOnly.reasons, kept: ['subgroup'] }]);
  const text = summaryTable({ benchmarks: [b1], sweeps: [], warnings: [] }, new Chalk({ level: 0 }));
  assert.match(text.replace(/\s+/g, ' '), /disjoint\.stl\.seed3 \(its subgroup network is kept\)/);

  // The same sign in a multi-task network takes out every task of the cell.
  const mtl = {
    ...cell('sweep-b1', 'mtl+dm', 3, 1, 0.9, 0.9),
    metrics: { ...cell('sweep-b1', 'mtl+dm', 3, 1, 0.9, 0.9).metrics!, stability: { ...groupOnly, reasons: ['mtl: …'] } },
  };
  const withMtl = buildReport({ cells: [...all, mtl], benchmarks: new Map(), warnings: [] }).benchmarks[0]!;
  const dm = (task: string) => withMtl.leaderboard.find((r) => r.setting === 'mtl+dm' && r.task === task && r.metric === 'accuracy')!;
  assert.deepEqual([dm('subgroup').n, dm('group').n], [2, 2]);
});

test('benchmarks with a single β, or cells written before the diagnostics existed, add no sweep and no diagnostic', () => {
  const old = cells()
    .filter((c) => c.config.benchmark === 'sweep-b1')
    .map((c) => ({
      ...c,
      metrics: { ...c.metrics!, relatedness: undefined, stability: undefined },
      history: c.history!.map((e) => ({ ...e, teachers: undefined })),
    }));
  const report = buildReport({ cells: old, benchmarks: new Map(), warnings: [] });
  assert.deepEqual(report.sweeps, []);
  assert.deepEqual(report.benchmarks[0]!.relatedness, []);
  assert.deepEqual(report.benchmarks[0]!.teachers, []);
  assert.deepEqual(report.benchmarks[0]!.unstable, []);
  assert.equal(report.benchmarks[0]!.summary.find((r) => r.setting === 'mtl+dm')!.unstable_cells, 0);
});

test('a study at β = 0 beside the sweep: one point per β (the benchmark with more seeds); a setting seen at one β is no series', () => {
  const study = [
    cell('a-study', 'stl', 1, 0, 0.4, 0.6),
    cell('a-study', 'mtl+dm', 1, 0, 0.4, 0.6),
    cell('a-study', 'mtl+sca', 1, 0, 0.4, 0.6),
  ];
  const report = buildReport({ cells: [...cells(), ...study], benchmarks: new Map(), warnings: [] });
  assert.equal(report.sweeps.length, 1);
  assert.deepEqual(
    report.sweeps[0]!.series.map((s) => [s.setting, s.points.map((p) => `${p.beta}:${p.benchmark}`)]),
    [['mtl+dm', ['0:sweep-b0', '1:sweep-b1']]],
  );
});

test('run over the files of a sweep writes one more report, over all of them, beside their folders', async () => {
  const root = tempDir('sweep-report');
  const all = cells();
  for (const c of all) {
    const dir = path.join(root, c.config.benchmark, `${c.config.regime.name}.${c.config.setting}.seed${c.config.seed}`);
    const hash = configHash(c.config);
    await beginCell(dir, c.config, hash);
    const m = c.metrics!;
    const result: CellResult = {
      test: m.test,
      val: m.val,
      bestEpoch: m.bestEpoch,
      selectionRule: m.selectionRule,
      history: c.history!,
      relatedness: {},
      ...(m.relatedness ? { relatednessDiagnostics: m.relatedness } : {}),
      ...(m.stability ? { stability: m.stability } : {}),
      labelCounts: {},
      trainSeconds: 1,
    };
    await finishCell(dir, hash, result, { startedAt: '', finishedAt: '', wallSeconds: 1, trainSeconds: 1 }, FAKE_PROVENANCE);
  }
  const io = captureIO();
  const files = await reportAcrossRuns([path.join(root, 'sweep-b0'), path.join(root, 'sweep-b1')], {}, io);
  assert.deepEqual(files.map((f) => path.relative(root, f)).sort(), ['leaderboard.csv', 'report.html', 'summary.csv']);
  assert.match(fs.readFileSync(path.join(root, 'report.html'), 'utf8'), /disjoint: Δm% against β/);
  assert.deepEqual(await reportAcrossRuns([path.join(root, 'sweep-b0')], {}, io), [], 'one benchmark: nothing more');
});
