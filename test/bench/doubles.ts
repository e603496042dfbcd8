/**
 * Test doubles for the runner: a small catalog, a dataset view with real label columns, and a
 * trainer that returns realistic, deterministic CellResults (derived from the config) without
 * touching tensors. Shared by the bench and report tests; it holds no tests itself.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CatalogEntry, DatasetCatalog } from '../../src/bench/catalog.js';
import type { BenchDeps } from '../../src/bench/command.js';
import type { TrainCellFn } from '../../src/bench/runner.js';
import type { Provenance } from '../../src/runs/store.js';
import type { CommandIO } from '../../src/util/command_io.js';
import { MASKED, NO_CLASS, type DatasetView, type LabelColumn, type Split, type SplitData } from '../../src/datasets/types.js';
import type { CellConfig } from '../../src/config/cell.js';
import { TRAINING_REVISION } from '../../src/config/defaults.js';
import {
  METHOD_OPTIONS,
  TRAIN_OPTIONS,
  defaultsOf,
  methodOptionsFor,
  type MethodOptions,
  type TrainOptions,
} from '../../src/config/options.js';
import type { CellResult, EpochRecord } from '../../src/train/types.js';
import { Chalk } from 'chalk';

const createdDirs: string[] = [];
process.on('exit', () => {
  for (const dir of createdDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system temp folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mtl-bench-${prefix}-`));
  createdDirs.push(dir);
  return dir;
}

export function fakeCatalog(overrides: Partial<Record<string, Partial<CatalogEntry>>> = {}): DatasetCatalog & { prepared: string[] } {
  const entries: Record<string, CatalogEntry> = {
    toy: {
      id: 'toy',
      tasks: [
        { name: 'group', kind: 'categorical' },
        { name: 'tags', kind: 'multilabel' },
        { name: 'tone', kind: 'categorical' },
      ],
      tables: [],
      ready: true,
      buildsOffline: false,
    },
    birds: {
      id: 'birds',
      tasks: [
        { name: 'species', kind: 'categorical' },
        { name: 'attributes', kind: 'multilabel' },
      ],
      tables: [{ from: 'species', to: 'attributes', source: 'file' }],
      ready: false,
      buildsOffline: false,
    },
    faces: { id: 'faces', tasks: [{ name: 'expression', kind: 'categorical' }], tables: [], ready: true, buildsOffline: false },
    aus: { id: 'aus', tasks: [{ name: 'au', kind: 'multilabel' }], tables: [], ready: true, buildsOffline: false },
    emoji: {
      id: 'emoji',
      tasks: [
        { name: 'group', kind: 'categorical' },
        { name: 'tags', kind: 'multilabel' },
      ],
      tables: [],
      ready: false,
      buildsOffline: true,
    },
  };
  for (const [id, patch] of Object.entries(overrides)) entries[id] = { ...entries[id]!, ...patch } as CatalogEntry;
  const prepared: string[] = [];
  return {
    prepared,
    ids: () => Object.keys(entries).sort(),
    get: (id) => entries[id],
    priorIds: () => ['du2014'],
    priorMatrix: (_prior, rows, columns) => rows.map((_, k) => columns.map((__, i) => ((k + i) % 2 === 0 ? 0.9 : 0.1))),
    prepare: async (id) => {
      prepared.push(id);
      entries[id] = { ...entries[id]!, ready: true };
    },
  };
}

function fakeImages(count: number, size: number) {
  return {
    size,
    channels: 3,
    count,
    read(indices: ArrayLike<number>) {
      const out = new Uint8Array(indices.length * size * size * 3);
      for (let i = 0; i < indices.length; i++) out.fill(indices[i]! % 256, i * size * size * 3, (i + 1) * size * size * 3);
      return out;
    },
  };
}

/** A toy dataset: `group` (3 classes), `tags` (4 labels, some masked), `tone` (2 classes). */
function fakeView(id = 'toy', size = 8, counts: Record<Split, number> = { train: 200, val: 40, test: 60 }): DatasetView {
  const split = (name: Split): SplitData => {
    const n = counts[name];
    const group = new Int32Array(n).map((_, i) => i % 3);
    const tone = new Int32Array(n).map((_, i) => (i % 7 === 0 ? NO_CLASS : i % 2));
    const tags = new Uint8Array(n * 4).map((_, j) => (j % 11 === 0 ? MASKED : (j * 7) % 3 === 0 ? 1 : 0));
    const labels: Record<string, LabelColumn> = {
      group: { kind: 'categorical', values: group },
      tags: { kind: 'multilabel', width: 4, values: tags },
      tone: { kind: 'categorical', values: tone },
    };
    return { split: name, count: n, ids: Array.from({ length: n }, (_, i) => `${name}/${i}.png`), images: fakeImages(n, size), labels };
  };
  return {
    id,
    name: `Toy ${id}`,
    tasks: [
      { name: 'group', kind: 'categorical', labels: ['a', 'b', 'c'] },
      { name: 'tags', kind: 'multilabel', labels: ['t0', 't1', 't2', 't3'] },
      { name: 'tone', kind: 'categorical', labels: ['light', 'dark'] },
    ],
    splits: { train: split('train'), val: split('val'), test: split('test') },
    relatedness: [],
  };
}

/** A number in [0, 1) fixed by the text: the double trainer's stand-in for training noise. */
function unit(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 2 ** 32;
}

const SETTING_GAIN: Record<string, number> = { stl: 0, mtl: 0.01, 'mtl+sca': 0.02, 'mtl+dm': -0.015, 'mtl+sca+dm': 0.03 };

/** Deterministic metrics: a base per task, a gain per setting, small per-seed noise. */
export function fakeResult(config: CellConfig): CellResult {
  const test: CellResult['test'] = {};
  const val: CellResult['val'] = {};
  for (const task of config.tasks) {
    const base = task.name === 'tags' ? 0.4 : 0.6;
    const noise = (unit(`${config.regime.name}|${config.setting}|${task.name}|${config.seed}`) - 0.5) * 0.02;
    const gain = (SETTING_GAIN[config.setting] ?? 0) * (task.name === 'tags' ? -1 : 1);
    const primary = Math.min(0.99, Math.max(0.01, base + gain + noise + config.train.epochs * 0.001));
    const other = primary * 0.9;
    test[task.name] =
      task.primary === 'accuracy' || task.primary === 'label_accuracy'
        ? { [task.primary]: primary, macro_f1: other }
        : { [task.primary]: primary, [task.name === 'tags' ? 'label_accuracy' : 'accuracy']: other };
    val[task.name] = { [task.primary]: primary + 0.01 };
  }
  const history: EpochRecord[] = Array.from({ length: config.train.epochs }, (_, e) => ({
    epoch: e + 1,
    loss: 2 / (e + 1),
    terms: { [`sup:${config.tasks[0]!.name}`]: 1 / (e + 1) },
    val: {},
    valPrimaryMean: 0.3 + 0.05 * e,
    seconds: 1,
    imagesPerSecond: 100,
  }));
  return {
    test,
    val,
    bestEpoch: config.train.epochs,
    selectionRule: 'best mean primary metric on val',
    history,
    relatedness: Object.fromEntries(config.relatedness.map((r) => [`${r.from}->${r.to}`, { source: r.source, matrix: [[0.5, 0.5]] }])),
    labelCounts: Object.fromEntries(config.tasks.map((t) => [t.name, 100])),
    trainSeconds: 10 + config.tasks.length + (config.setting === 'stl' ? 5 : 0),
  };
}

export interface FakeTrainer {
  train: TrainCellFn;
  calls: CellConfig[];
}

/** `crash(config)` returning true makes that cell throw, as a broken trainer would. */
export function fakeTrainer(crash: (config: CellConfig) => boolean = () => false): FakeTrainer {
  const calls: CellConfig[] = [];
  return {
    calls,
    train: async (config, data, options) => {
      calls.push(config);
      if (!data.splits.train.labels[config.tasks[0]!.name]) throw new Error('the view lacks the task');
      if (options.signal?.aborted) throw new Error('aborted');
      if (crash(config)) throw new Error(`simulated trainer crash in ${config.regime.name}/${config.setting}/seed${config.seed}`);
      if (options.outDir) fs.writeFileSync(path.join(options.outDir, 'checkpoint.bin'), 'weights');
      return fakeResult(config);
    },
  };
}

export const FAKE_PROVENANCE: Provenance = {
  package: { name: 'mtl-bench', version: '0.0.0-test' },
  gitCommit: null,
  gitDirty: null,
  backend: 'test-double',
  tfjs: '0',
  node: process.version,
  platform: 'test',
  cpu: { model: 'test cpu', count: 2 },
  gpu: null,
};

export function fakeDeps(trainer: FakeTrainer, catalog = fakeCatalog()): BenchDeps & { loads: string[] } {
  const loads: string[] = [];
  return {
    loads,
    trainCell: trainer.train,
    loadDataset: async (id, options) => {
      loads.push(id);
      return fakeView(id, options.inputSize);
    },
    provenance: () => FAKE_PROVENANCE,
    priorMatrix: (prior, rows, columns) => catalog.priorMatrix(prior, rows, columns),
    catalog: () => catalog,
    backbones: ['convnet-s', 'resnet18'],
    initBackend: async () => ({ name: 'cpu', gpuInUse: false, warnings: [] }),
  };
}

export interface CapturedIO extends CommandIO {
  out: string[];
  err: string[];
}

export function captureIO(signal?: AbortSignal): CapturedIO {
  const out: string[] = [];
  const err: string[] = [];
  const plain = new Chalk({ level: 0 });
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), paint: plain, paintErr: plain, interactive: false, signal };
}

/** A valid benchmark on the toy dataset, as YAML text; `extra` is appended verbatim. */
export function toyBenchmarkYaml(extra = '', name = 'toy-study'): string {
  return `name: ${name}
description: a toy study for tests
dataset: toy
tasks:
  group: { primary: accuracy }
  tags: { primary: macro_f1 }
input: { size: 8 }
backbone: convnet-s
train: { epochs: 2, batch: 16 }
relatedness:
  - { from: group, to: tags, source: data, min_coannotated: 5 }
regimes:
  full: full
  disjoint: { kind: disjoint, overlap: 0.2 }
settings: [stl, mtl, mtl+sca, mtl+dm, mtl+sca+dm]
seeds: [1, 2]
reference:
  group: { accuracy: 70 }
${extra}`;
}

export function writeBenchmark(dir: string, text: string, file = 'study.yaml'): string {
  const target = path.join(dir, file);
  fs.writeFileSync(target, text);
  return target;
}

/**
 * A cell config for report tests that write run folders by hand: the configuration module's
 * defaults (2 epochs, batch 4, 8×8 convnet-s on the toy dataset) with the given identity and tasks.
 */
export function handCellConfig(
  fields: Pick<CellConfig, 'benchmark' | 'tasks' | 'setting' | 'seed' | 'relatedness' | 'regime'>,
): CellConfig {
  return {
    dataset: 'toy',
    inputSize: 8,
    backbone: 'convnet-s',
    train: { ...defaultsOf(TRAIN_OPTIONS), epochs: 2, batchSize: 4 } as TrainOptions,
    method: methodOptionsFor(fields.setting, defaultsOf(METHOD_OPTIONS) as MethodOptions),
    trainingRevision: TRAINING_REVISION,
    ...fields,
  };
}
