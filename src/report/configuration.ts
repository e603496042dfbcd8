import type { CellConfig } from '../config/cell.js';
import { METHOD_OPTIONS, TRAIN_OPTIONS, readBy, type OptionSpec } from '../config/options.js';
import type { RegimeSpec } from '../config/regimes.js';
import { cellId } from '../runs/identity.js';
import type { CellRecord } from '../runs/store.js';

/**
 * The configuration a benchmark's cells actually ran with, read from their config.json (not from
 * the benchmark file, which command-line overrides such as --epochs do not change), and where the
 * cells disagree.
 */

export type ConfigGroup = 'model' | 'training' | 'method' | 'relatedness' | 'regimes';

export interface ConfigValue {
  value: string;
  /** Ids of the cells that ran with it. */
  cells: string[];
}

export interface ConfigItem {
  group: ConfigGroup;
  label: string;
  /** One value when the cells agree; several, most common first, when they do not. */
  values: ConfigValue[];
}

export interface RunConfiguration {
  items: ConfigItem[];
  /** Seeds per setting, in the benchmark's setting order. */
  seeds: { setting: string; seeds: number[] }[];
}

interface ItemSpec {
  group: ConfigGroup;
  label: string;
  /** Whether the cell's config has this item at all (e.g. only coupled settings have relatedness). */
  applies?: (config: CellConfig) => boolean;
  value: (config: CellConfig) => string;
}

function learningRate(config: CellConfig): string {
  const t = config.train;
  if (t.schedule === 'step') return `${t.learningRate} (step: x${t.stepGamma} every ${t.stepEvery} epochs)`;
  return `${t.learningRate} (${t.schedule})`;
}

function augmentation(config: CellConfig): string {
  const parts: string[] = [];
  if (config.train.cropPadding > 0) parts.push(`random crop after padding ${config.train.cropPadding} px (edge repeated)`);
  if (config.train.flip) parts.push('horizontal flip');
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function describeRegime(spec: RegimeSpec): string {
  switch (spec.kind) {
    case 'full':
      return 'full';
    case 'disjoint':
      return `disjoint with overlap ${spec.overlap}`;
    case 'scarce':
      return `scarce: ${spec.task} keeps ${spec.fraction * 100}% of its labels`;
    case 'multi-source':
      return 'multi-source';
  }
}

function describeRelatedness(config: CellConfig): string {
  return config.relatedness
    .map((r) => {
      const detail =
        r.source === 'data'
          ? `data (alpha ${r.alpha}, min_coannotated ${r.minCoannotated})`
          : r.source === 'prior'
            ? `prior${r.prior ? ` ${r.prior}` : ''}`
            : "the dataset's file";
      return `${r.from}->${r.to} from ${detail}${r.sharpnessBlend ? `, sharpness blend ${r.sharpnessBlend}` : ''}`;
    })
    .join('; ');
}

function optionValue(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${String(v)}`).join(', ');
  }
  return String(value);
}

const FIXED_ITEMS: ItemSpec[] = [
  { group: 'model', label: 'dataset', value: (c) => c.dataset },
  { group: 'model', label: 'tasks', value: (c) => c.tasks.map((t) => `${t.name} (${t.primary})`).join(', ') },
  { group: 'model', label: 'backbone', value: (c) => `${c.backbone}${c.pretrained ? `, pretrained from ${c.pretrained}` : ''}` },
  { group: 'model', label: 'input size', value: (c) => `${c.inputSize}x${c.inputSize}` },
  { group: 'training', label: 'epochs', value: (c) => String(c.train.epochs) },
  { group: 'training', label: 'batch', value: (c) => String(c.train.batchSize) },
  {
    group: 'training',
    label: 'optimizer',
    value: (c) => (c.train.optimizer === 'sgd' ? `sgd, momentum ${c.train.momentum}` : c.train.optimizer),
  },
  { group: 'training', label: 'learning rate', value: learningRate },
  { group: 'training', label: 'weight decay', value: (c) => String(c.train.weightDecay) },
  { group: 'training', label: 'augmentation', value: augmentation },
  { group: 'training', label: 'sampling', value: (c) => (c.train.classBalanced ? 'class-balanced' : 'uniform') },
  // Left out of configs at its default (so older runs keep their hashes): absent reads as the default.
  { group: 'training', label: 'initialisation', value: (c) => c.train.init ?? TRAIN_OPTIONS.init.default },
];

/** Method options, each counted only over the cells whose setting reads it (the others carry its default). */
const METHOD_ITEMS: ItemSpec[] = (Object.entries(METHOD_OPTIONS) as [keyof CellConfig['method'], OptionSpec<unknown>][]).map(
  ([field, spec]) => ({
    group: 'method',
    label: spec.key.join('.'),
    applies: (c) => readBy(c.setting, spec),
    value: (c) => optionValue(c.method[field]),
  }),
);

const RELATEDNESS_ITEM: ItemSpec = {
  group: 'relatedness',
  label: 'relatedness',
  applies: (c) => c.relatedness.length > 0,
  value: describeRelatedness,
};

function collect(spec: ItemSpec, cells: CellRecord[]): ConfigItem | undefined {
  const byValue = new Map<string, string[]>();
  for (const cell of cells) {
    if (spec.applies && !spec.applies(cell.config)) continue;
    const value = spec.value(cell.config);
    byValue.set(value, [...(byValue.get(value) ?? []), cellId(cell.config)]);
  }
  if (byValue.size === 0) return undefined;
  const values = [...byValue.entries()]
    .map(([value, ids]) => ({ value, cells: ids.sort() }))
    .sort((a, b) => b.cells.length - a.cells.length || (a.value < b.value ? -1 : 1));
  return { group: spec.group, label: spec.label, values };
}

export function describeConfiguration(cells: CellRecord[], regimes: string[], settings: string[]): RunConfiguration {
  const regimeItems: ItemSpec[] = regimes.map((name) => ({
    group: 'regimes',
    label: name,
    applies: (c) => c.regime.name === name,
    value: (c) => describeRegime(c.regime.spec),
  }));
  const items = [...FIXED_ITEMS, ...METHOD_ITEMS, RELATEDNESS_ITEM, ...regimeItems]
    .map((spec) => collect(spec, cells))
    .filter((i) => i !== undefined);
  const seeds = settings.map((setting) => ({
    setting,
    seeds: [...new Set(cells.filter((c) => c.config.setting === setting).map((c) => c.config.seed))].sort((a, b) => a - b),
  }));
  return { items, seeds };
}

/** "4" when the cells agree; "4 in 10 cells, 1 in 10 cells" when not. */
function itemText(item: ConfigItem): string {
  if (item.values.length === 1) return item.values[0]!.value;
  return item.values.map((v) => `${v.value} in ${v.cells.length} cell${v.cells.length > 1 ? 's' : ''}`).join(', ');
}

/** The items on which the cells disagree, as one line for a warning; undefined when they all agree. */
export function disagreement(configuration: RunConfiguration): string | undefined {
  const differing = configuration.items.filter((i) => i.values.length > 1);
  if (differing.length === 0) return undefined;
  return differing
    .map((i) => `${i.group === 'regimes' ? `regime ${i.label}` : i.label}: ${itemText(i)} (e.g. ${i.values[1]!.cells[0]})`)
    .join('; ');
}

/** Seeds in one line: "1, 2, 3", or per setting where the settings differ. */
export function seedsText(configuration: RunConfiguration): string {
  const distinct = new Set(configuration.seeds.map((s) => s.seeds.join(', ')));
  if (distinct.size <= 1) return configuration.seeds[0]?.seeds.join(', ') ?? '';
  return configuration.seeds.map((s) => `${s.setting} ${s.seeds.join(', ')}`).join('; ');
}

const GROUP_TITLES: Record<ConfigGroup, string> = {
  model: 'data and model',
  training: 'training',
  method: 'method',
  relatedness: 'relatedness',
  regimes: 'regimes',
};

/** The configuration as a few lines of "group: label value, …", plus the seeds; for the terminal header. */
export function configurationLines(configuration: RunConfiguration): string[] {
  const lines: string[] = [];
  for (const group of Object.keys(GROUP_TITLES) as ConfigGroup[]) {
    const items = configuration.items.filter((i) => i.group === group);
    if (items.length === 0) continue;
    const text =
      group === 'relatedness'
        ? items.map(itemText).join('; ')
        : group === 'regimes'
          ? items.map(regimeText).join('; ')
          : items.map((i) => `${i.label} ${itemText(i)}`).join(', ');
    lines.push(`${GROUP_TITLES[group]}: ${text}`);
  }
  lines.push(`seeds: ${seedsText(configuration)}`);
  return lines;
}

/** "full", "disjoint with overlap 0.05", or "name = what" when the regime's name does not say it. */
function regimeText(item: ConfigItem): string {
  const text = itemText(item);
  return text.startsWith(item.label) ? text : `${item.label} = ${text}`;
}

export function groupTitle(group: ConfigGroup): string {
  return GROUP_TITLES[group];
}
