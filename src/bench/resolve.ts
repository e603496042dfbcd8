import type { CellConfig } from '../config/cell.js';
import { TRAINING_REVISION } from '../config/defaults.js';
import { METRICS_BY_KIND, metricAppliesTo, type MetricName } from '../config/metrics.js';
import { methodOptionsFor } from '../config/options.js';
import type { RegimeSpec } from '../config/regimes.js';
import { inSettingOrder, isCoupled, parseSetting, type Setting } from '../config/settings.js';
import type { TaskKind } from '../datasets/types.js';
import { UserError } from '../util/errors.js';
import type { DatasetCatalog } from './catalog.js';
import type { BenchmarkDoc, LoadedBenchmark } from './schema.js';

/** Options a user may override on the command line without editing the file. */
export interface Overrides {
  settings?: string[];
  regimes?: string[];
  seeds?: number[];
  epochs?: number;
}

export interface ResolvedTask {
  name: string;
  kind: TaskKind;
  primary: MetricName;
}

/** A benchmark checked against the datasets it names, ready to expand into cells. */
export interface ResolvedBenchmark {
  file: string;
  doc: BenchmarkDoc;
  name: string;
  /** The dataset id, or for multi-source studies the sources joined, e.g. "affectnet.expression+disfa.au". */
  datasetLabel: string;
  /** The dataset ids that must be ready before training. */
  datasetIds: string[];
  tasks: ResolvedTask[];
  regimes: { name: string; spec: RegimeSpec }[];
  settings: Setting[];
  seeds: number[];
}

/** Applies CLI overrides; each bad value is a one-line error naming the flag and the file. */
export function applyOverrides(loaded: LoadedBenchmark, overrides: Overrides): LoadedBenchmark {
  const doc: BenchmarkDoc = { ...loaded.doc, train: { ...loaded.doc.train }, regimes: { ...loaded.doc.regimes } };
  if (overrides.settings) {
    const settings = overrides.settings.map((s) => {
      const parsed = parseSetting(s);
      if (!parsed.ok) throw new UserError(`--settings: ${parsed.problem}`);
      return parsed.setting;
    });
    doc.settings = inSettingOrder(settings);
  }
  if (overrides.regimes) {
    const known = Object.keys(loaded.doc.regimes);
    for (const r of overrides.regimes) {
      if (!known.includes(r))
        throw new UserError(`--regimes: "${r}" is not a regime of ${loaded.file}; its regimes are ${known.join(', ')}`);
    }
    doc.regimes = Object.fromEntries(known.filter((r) => overrides.regimes!.includes(r)).map((r) => [r, loaded.doc.regimes[r]!]));
  }
  if (overrides.seeds) doc.seeds = [...new Set(overrides.seeds)];
  if (overrides.epochs !== undefined) doc.train.epochs = overrides.epochs;
  return { file: loaded.file, doc };
}

/**
 * Checks every name the benchmark uses against the datasets and backbones that exist here, so a
 * typo fails in a second instead of after an hour of training. Throws a one-line UserError.
 */
export function resolveBenchmark(loaded: LoadedBenchmark, catalog: DatasetCatalog, backbones: readonly string[]): ResolvedBenchmark {
  const { doc, file } = loaded;
  const err = (where: string, message: string) => new UserError(`${file}: ${where}: ${message}`);
  const known = catalog.ids();
  const entryOf = (id: string, where: string) => {
    const entry = catalog.get(id);
    if (!entry) throw err(where, `unknown dataset "${id}"; known datasets: ${known.join(', ')}`);
    return entry;
  };

  const tasks: ResolvedTask[] = [];
  const sourceOf: Record<string, { dataset: string; task: string }> = {};
  let datasetIds: string[];
  let datasetLabel: string;
  if (doc.dataset) {
    const entry = entryOf(doc.dataset, 'dataset');
    for (const [name, task] of Object.entries(doc.tasks)) {
      const spec = entry.tasks.find((t) => t.name === name);
      if (!spec)
        throw err(
          `tasks.${name}`,
          `dataset "${entry.id}" has no task "${name}"; its tasks are ${entry.tasks.map((t) => t.name).join(', ')}`,
        );
      tasks.push({ name, kind: spec.kind, primary: task.primary });
      sourceOf[name] = { dataset: entry.id, task: name };
    }
    datasetIds = [entry.id];
    datasetLabel = entry.id;
  } else {
    for (const [name, task] of Object.entries(doc.tasks)) {
      const source = doc.sources![name]!;
      const entry = entryOf(source.dataset, `sources.${name}.dataset`);
      const spec = entry.tasks.find((t) => t.name === source.task);
      if (!spec)
        throw err(
          `sources.${name}.task`,
          `dataset "${entry.id}" has no task "${source.task}"; its tasks are ${entry.tasks.map((t) => t.name).join(', ')}`,
        );
      tasks.push({ name, kind: spec.kind, primary: task.primary });
      sourceOf[name] = source;
    }
    datasetIds = [...new Set(Object.values(sourceOf).map((s) => s.dataset))];
    datasetLabel = tasks.map((t) => `${sourceOf[t.name]!.dataset}.${sourceOf[t.name]!.task}`).join('+');
  }
  const kindOf = Object.fromEntries(tasks.map((t) => [t.name, t.kind]));

  const checkMetric = (where: string, task: string, metric: string) => {
    const allowed = METRICS_BY_KIND[kindOf[task]!];
    if (!metricAppliesTo(kindOf[task]!, metric))
      throw err(where, `"${metric}" does not apply to ${kindOf[task]} task "${task}"; expected ${allowed.join(' or ')}`);
  };
  for (const t of tasks) checkMetric(`tasks.${t.name}.primary`, t.name, t.primary);
  for (const [task, metrics] of Object.entries(doc.reference)) {
    for (const metric of Object.keys(metrics)) checkMetric(`reference.${task}.${metric}`, task, metric);
  }
  doc.check.forEach((c, i) => checkMetric(`check[${i}].metric`, c.task, c.metric));

  const backboneName = typeof doc.backbone === 'string' ? doc.backbone : doc.backbone.name;
  if (!backbones.includes(backboneName))
    throw err('backbone', `unknown backbone "${backboneName}"; expected one of ${backbones.join(', ')}`);

  const regimes = Object.entries(doc.regimes).map(([name, spec]) => ({ name, spec }));
  doc.relatedness.forEach((r, i) => {
    const where = `relatedness[${i}]`;
    if (kindOf[r.from] === 'multilabel' && kindOf[r.to] === 'multilabel') {
      throw err(where, `${r.from}->${r.to}: no relatedness is defined between two multi-label tasks`);
    }
    // R[k,·] is conditioned on a class, so a pair is written from its categorical task; between a
    // categorical and a multi-label task that one pair couples both directions (method.md).
    if (kindOf[r.from] === 'multilabel') {
      throw err(
        `${where}.from`,
        `${r.from}->${r.to}: relatedness is written from the categorical task (${r.to}->${r.from}); that one pair couples both directions`,
      );
    }
    const from = sourceOf[r.from]!;
    const to = sourceOf[r.to]!;
    if (r.source === 'data') {
      if (from.dataset !== to.dataset || regimes.some((g) => g.spec.kind === 'multi-source')) {
        throw err(
          where,
          `${r.from}->${r.to}: source "data" counts samples that carry both labels, ` +
            'and tasks from different sources share none; use prior or file',
        );
      }
      for (const g of regimes) {
        if (g.spec.kind === 'disjoint' && g.spec.overlap === 0) {
          throw err(where, `${r.from}->${r.to}: source "data" needs co-annotated samples, but regime "${g.name}" keeps none (overlap 0)`);
        }
      }
      return;
    }
    if (r.prior !== undefined) {
      if (r.source !== 'prior') throw err(`${where}.prior`, 'only applies with source: prior');
      if (!catalog.priorIds().includes(r.prior))
        throw err(
          `${where}.prior`,
          `no prior named "${r.prior}" in the dataset manifest (known: ${catalog.priorIds().join(', ') || 'none'})`,
        );
      return;
    }
    const candidates = [...new Set([from.dataset, to.dataset])].flatMap((id) => catalog.get(id)!.tables);
    const table = candidates.find((t) => t.source === r.source && t.from === from.task && t.to === to.task);
    if (!table) {
      const hint =
        r.source === 'prior' ? `; name one of the manifest's priors with prior: (${catalog.priorIds().join(', ') || 'none'})` : '';
      const datasets = [...new Set([from.dataset, to.dataset])].join(' or ');
      throw err(
        where,
        `${r.from}->${r.to}: no ${r.source} relatedness table between "${from.task}" and "${to.task}" is shipped with ${datasets}${hint}`,
      );
    }
  });

  return { file, doc, name: doc.name, datasetLabel, datasetIds, tasks, regimes, settings: [...doc.settings], seeds: [...doc.seeds] };
}

/** Fails with the command that would fetch each dataset that is not ready here. */
export async function ensureDatasetsReady(resolved: ResolvedBenchmark, catalog: DatasetCatalog): Promise<void> {
  for (const id of resolved.datasetIds) {
    const entry = catalog.get(id)!;
    if (entry.ready) continue;
    if (entry.buildsOffline) {
      await catalog.prepare(id);
      if (catalog.get(id)?.ready) continue;
    }
    const where = resolved.doc.dataset ? 'dataset' : 'sources';
    throw new UserError(
      `${resolved.file}: ${where}: dataset "${id}" is not fetched here; ${entry.fetchHint ?? `run: mtl-bench datasets fetch ${id}`}`,
    );
  }
}

/** The trainer's view of one cell, fully resolved (every default filled in). */
export function toCellConfig(
  resolved: ResolvedBenchmark,
  regime: { name: string; spec: RegimeSpec },
  setting: Setting,
  seed: number,
): CellConfig {
  const { doc } = resolved;
  // A named prior travels in the spec so that choosing another prior changes the config hash; the
  // runner lays the prior out as a table in the dataset view.
  const relatedness = isCoupled(setting) ? doc.relatedness.map((r) => ({ ...r })) : [];
  const config: CellConfig = {
    benchmark: resolved.name,
    dataset: resolved.datasetLabel,
    tasks: resolved.tasks.map((task) => ({ name: task.name, primary: task.primary })),
    inputSize: doc.input.size,
    backbone: typeof doc.backbone === 'string' ? doc.backbone : doc.backbone.name,
    train: { ...doc.train },
    method: methodOptionsFor(setting, doc.method),
    relatedness,
    regime: { name: regime.name, spec: regime.spec },
    setting,
    seed,
    trainingRevision: TRAINING_REVISION,
  };
  if (typeof doc.backbone !== 'string' && doc.backbone.pretrained) config.pretrained = doc.backbone.pretrained;
  return config;
}
