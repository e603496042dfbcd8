import { z } from 'zod';
import { BALANCING_METHODS, COUPLINGS, type BalancingMethod, type Coupling, type Setting, settingSpec, usesCoupling } from './settings.js';
import { boolean, fraction, identifier, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './validators.js';

/**
 * Every option of a benchmark file's `train`, `method` and `relatedness` blocks: where it is
 * written, how it is checked, its default and what it means. The benchmark schema, the trainer's
 * option types, the README's option table and the rule that resets options a setting does not
 * use are all derived from these tables, so an option is added here and nowhere else.
 */
export interface OptionSpec<T> {
  /** The key path inside its block, as users write it (snake_case), e.g. ['augmentation', 'crop_padding']. */
  key: readonly string[];
  schema: z.ZodType<T>;
  /** Absent (and not `optional`): the option is required. NoInfer: the type comes from the schema alone. */
  default?: NoInfer<T>;
  /** May be left out, with no default. */
  optional?: boolean;
  /** One line for the README. */
  doc: string;
  /**
   * Which settings read the option: any setting with one of these couplings or balancing methods,
   * or every multi-task setting. Settings that do not read it carry its default, so changing it
   * reruns only the cells it can affect; an option read only by balancing methods is left out of
   * the other settings' cells altogether, so that adding a method never changes an existing cell.
   */
  usedBy?: readonly (Coupling | BalancingMethod)[] | 'multi-task';
  /**
   * Left out of the parsed block when it equals its default, so a cell's config (and its hash)
   * reads as it did before the option existed: for options added after studies were run, whose
   * run folders must stay valid. Readers take the value through `optionValue`.
   */
  omitAtDefault?: boolean;
}

function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

/** An option added after studies were run: absent from a config when at its default (see `omitAtDefault`). */
function laterOption<T>(
  spec: Omit<OptionSpec<T>, 'omitAtDefault' | 'optional'> & { default: NoInfer<T> },
): OptionSpec<T> & { default: T; omitAtDefault: true } {
  return { ...spec, omitAtDefault: true };
}

function optionalOption<T>(spec: Omit<OptionSpec<T>, 'default' | 'optional'>): OptionSpec<T> & { optional: true } {
  return { ...spec, optional: true };
}

/** An option of a balancing method: present in a cell's config only when its setting uses one of `usedBy`. */
function balancingOption<T>(
  spec: OptionSpec<T> & { default: NoInfer<T>; usedBy: readonly BalancingMethod[] },
): OptionSpec<T> & { usedBy: readonly BalancingMethod[] } {
  return spec;
}

type OptionTable = Record<string, OptionSpec<unknown>>;
type RequiredKeys<O> = { [K in keyof O]: O[K] extends { optional: true } | { omitAtDefault: true } ? never : K }[keyof O];
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
type ValuesOf<O> = { [K in RequiredKeys<O>]: ValueOf<O[K]> } & { [K in Exclude<keyof O, RequiredKeys<O>>]?: ValueOf<O[K]> };

export const TRAIN_OPTIONS = {
  epochs: option({ key: ['epochs'], schema: positiveInt, doc: 'Training epochs of every network.' }),
  batchSize: option({ key: ['batch'], schema: positiveInt, default: 64, doc: 'Images per training step.' }),
  learningRate: option({ key: ['lr'], schema: positiveNumber, default: 0.001, doc: 'Initial learning rate.' }),
  optimizer: option({ key: ['optimizer'], schema: oneOf(['adam', 'sgd']), default: 'adam', doc: 'Adam or SGD with momentum.' }),
  momentum: option({ key: ['momentum'], schema: fraction('a momentum in [0, 1]'), default: 0.9, doc: 'Momentum of SGD.' }),
  schedule: option({
    key: ['schedule'],
    schema: oneOf(['cosine', 'step', 'constant']),
    default: 'cosine',
    doc: 'Learning-rate schedule over the epochs.',
  }),
  stepEvery: option({ key: ['step_every'], schema: positiveInt, default: 30, doc: 'For `step`: epochs between rate changes.' }),
  stepGamma: option({ key: ['step_gamma'], schema: positiveNumber, default: 0.1, doc: 'For `step`: factor applied to the rate.' }),
  weightDecay: option({
    key: ['weight_decay'],
    schema: nonNegativeNumber,
    default: 0,
    doc: 'Added to the gradient (PyTorch style), on convolution and dense kernels only.',
  }),
  cropPadding: option({
    key: ['augmentation', 'crop_padding'],
    schema: nonNegativeInt,
    default: 0,
    doc: 'Random crop after padding by this many pixels, repeating the edge (0: off).',
  }),
  flip: option({ key: ['augmentation', 'flip'], schema: boolean, default: false, doc: 'Random horizontal flip.' }),
  classBalanced: option({
    key: ['class_balanced'],
    schema: boolean,
    default: false,
    doc: "Draw training batches with equal weight per class of the network's first categorical task.",
  }),
  init: laterOption({
    key: ['init'],
    schema: oneOf(['he', 'pytorch']),
    default: 'he',
    doc:
      'Initial weights: `he` (He-normal convolutions, Glorot-uniform heads, zero head biases) ' +
      "or `pytorch` (PyTorch's defaults: uniform ±1/√fan_in for convolution and head kernels and head biases, " +
      "a variance a sixth of He's).",
  }),
};

export const METHOD_OPTIONS = {
  tau: option({
    key: ['tau'],
    schema: positiveNumber,
    default: 1,
    doc: 'Temperature of the SCA target from labels and the DM target from predictions.',
    usedBy: COUPLINGS,
  }),
  detachTarget: option({
    key: ['detach_target'],
    schema: boolean,
    default: false,
    doc: 'Stop-gradient on the distribution-matching target.',
    usedBy: ['dm'],
  }),
  dmVariant: option({
    key: ['dm_variant'],
    schema: oneOf(['likelihood', 'prototypical']),
    default: 'likelihood',
    doc: 'Multi-label → categorical target: soft likelihood, or only labels with R ≥ 0.5.',
    usedBy: ['dm'],
  }),
  dmScope: option({
    key: ['dm_scope'],
    schema: oneOf(['all', 'missing']),
    default: 'all',
    doc: "Samples DM covers: all, or only those lacking the target task's label.",
    usedBy: ['dm'],
  }),
  lambdaSca: option({ key: ['lambda_sca'], schema: nonNegativeNumber, default: 1, doc: 'Weight λ_SCA of the SCA term.', usedBy: ['sca'] }),
  lambdaDm: option({ key: ['lambda_dm'], schema: nonNegativeNumber, default: 1, doc: 'Weight λ_DM of the DM term.', usedBy: ['dm'] }),
  taskWeights: option<Record<string, number>>({
    key: ['task_weights'],
    schema: z.record(z.string(), nonNegativeNumber),
    default: {},
    doc: 'w_t per task name; unnamed tasks weigh 1.',
    usedBy: 'multi-task',
  }),
  dwaTemperature: balancingOption({
    key: ['dwa_temperature'],
    schema: positiveNumber,
    default: 2,
    doc: "DWA: temperature T of the softmax over the tasks' loss-descent rates.",
    usedBy: ['dwa'],
  }),
  gradnormAlpha: balancingOption({
    key: ['gradnorm_alpha'],
    schema: nonNegativeNumber,
    default: 1.5,
    doc: 'GradNorm: asymmetry α, how strongly slower tasks get larger gradients.',
    usedBy: ['gradnorm'],
  }),
  cagradC: balancingOption({
    key: ['cagrad_c'],
    schema: z
      .number({ error: 'expected a number in [0, 1)' })
      .min(0, { error: 'expected a number in [0, 1)' })
      .lt(1, { error: 'expected a number in [0, 1)' }),
    default: 0.5,
    doc: 'CAGrad: c, the radius of the ball around the mean gradient, relative to its length.',
    usedBy: ['cagrad'],
  }),
  famoLr: balancingOption({
    key: ['famo_lr'],
    schema: positiveNumber,
    default: 0.025,
    doc: 'FAMO: learning rate β of the task-weight logits.',
    usedBy: ['famo'],
  }),
  famoDecay: balancingOption({
    key: ['famo_decay'],
    schema: nonNegativeNumber,
    default: 0.01,
    doc: 'FAMO: decay γ of the task-weight logits.',
    usedBy: ['famo'],
  }),
};

export const RELATEDNESS_OPTIONS = {
  from: option({
    key: ['from'],
    schema: z.string({ error: 'expected a task name' }).min(1),
    doc: 'The categorical task R is conditioned on.',
  }),
  to: option({ key: ['to'], schema: z.string({ error: 'expected a task name' }).min(1), doc: 'The related task.' }),
  prior: optionalOption({
    key: ['prior'],
    schema: identifier('the name of a prior in the dataset manifest'),
    doc: 'For `prior`: a named prior of the manifest (`priors:`), needed where the datasets ship no table for the pair.',
  }),
  source: option({
    key: ['source'],
    schema: oneOf(['prior', 'file', 'data']),
    doc: "Where R comes from: an expert prior, the dataset's own table, or counts on co-annotated training samples.",
  }),
  alpha: option({ key: ['alpha'], schema: nonNegativeNumber, default: 1, doc: 'For `data`: additive smoothing of the counts.' }),
  minCoannotated: option({
    key: ['min_coannotated'],
    schema: positiveInt,
    default: 20,
    doc: 'For `data`: fewer co-annotated training samples is an error, never a silent uniform matrix.',
  }),
  sharpnessBlend: laterOption({
    key: ['sharpness_blend'],
    schema: fraction('a blend β in [0, 1]'),
    default: 0,
    doc:
      'β: R is replaced by (1 − β)·R + β·R̄, where R̄ repeats the mean of R over the classes of `from` in every row ' +
      '(README, "Relatedness sharpness"); 0 keeps R, 1 makes it uninformative.',
  }),
};

export type TrainOptions = ValuesOf<typeof TRAIN_OPTIONS>;
/** The method block as a benchmark file resolves it: every option, defaults filled in. */
export type MethodOptions = ValuesOf<typeof METHOD_OPTIONS>;
type BalancingOptionField = {
  [K in keyof typeof METHOD_OPTIONS]: (typeof METHOD_OPTIONS)[K] extends { usedBy: readonly BalancingMethod[] } ? K : never;
}[keyof typeof METHOD_OPTIONS];
/** The method options of one cell: a balancing method's options appear only in the cells of settings that use it. */
export type CellMethodOptions = Omit<MethodOptions, BalancingOptionField> & Partial<Pick<MethodOptions, BalancingOptionField>>;
export type RelatednessOptions = ValuesOf<typeof RELATEDNESS_OPTIONS>;

function hasDefault(spec: OptionSpec<unknown>): boolean {
  return spec.default !== undefined;
}

/**
 * The zod schema of one block: nested objects follow the key paths, unknown keys are rejected at
 * every depth, defaults are filled in, and the result is the flat camelCase record of the table.
 */
export function blockSchema<O extends OptionTable>(options: O): z.ZodType<ValuesOf<O>> {
  interface Node {
    leaves: Record<string, z.ZodType>;
    children: Record<string, Node>;
  }
  const root: Node = { leaves: {}, children: {} };
  for (const spec of Object.values(options)) {
    let node = root;
    for (const segment of spec.key.slice(0, -1)) node = node.children[segment] ??= { leaves: {}, children: {} };
    const leaf = spec.key[spec.key.length - 1]!;
    node.leaves[leaf] = hasDefault(spec) ? spec.schema.default(spec.default) : spec.optional ? spec.schema.optional() : spec.schema;
  }
  // prefault parses the empty default, so the inner options' own defaults fill an omitted block.
  const build = (node: Node): z.ZodType =>
    z.strictObject({
      ...node.leaves,
      ...Object.fromEntries(Object.entries(node.children).map(([k, child]) => [k, build(child).prefault({})])),
    });
  return build(root).transform((parsed) => {
    const flat: Record<string, unknown> = {};
    for (const [field, spec] of Object.entries(options)) {
      const value = valueAt(parsed, spec.key);
      if (value !== undefined && !(spec.omitAtDefault && value === spec.default)) flat[field] = value;
    }
    return flat as ValuesOf<O>;
  }) as unknown as z.ZodType<ValuesOf<O>>;
}

function valueAt(root: unknown, key: readonly string[]): unknown {
  let value = root;
  for (const segment of key) value = (value as Record<string, unknown> | undefined)?.[segment];
  return value;
}

/** Every default of a table (required options, and options left out at their default, left out). */
export function defaultsOf<O extends OptionTable>(options: O): Partial<ValuesOf<O>> {
  return Object.fromEntries(
    Object.entries(options)
      .filter(([, spec]) => hasDefault(spec) && !spec.omitAtDefault)
      .map(([field, spec]) => [field, spec.default]),
  ) as Partial<ValuesOf<O>>;
}

/** The value of an option that a config leaves out at its default (`omitAtDefault`). */
export function optionValue<T>(spec: OptionSpec<T> & { default: T }, value: T | undefined): T {
  return value === undefined ? spec.default : value;
}

function isBalancingMethod(name: string): name is BalancingMethod {
  return (BALANCING_METHODS as readonly string[]).includes(name);
}

/** Whether a setting reads the option (the others carry its default, or leave a balancing method's option out). */
export function readBy(setting: Setting, spec: OptionSpec<unknown>): boolean {
  if (spec.usedBy === undefined) return true;
  if (spec.usedBy === 'multi-task') return settingSpec(setting).multiTask;
  return spec.usedBy.some((user) => (isBalancingMethod(user) ? settingSpec(setting).balancing === user : usesCoupling(setting, user)));
}

function onlyBalancing(spec: OptionSpec<unknown>): boolean {
  return Array.isArray(spec.usedBy) && spec.usedBy.length > 0 && spec.usedBy.every(isBalancingMethod);
}

/**
 * The method options a setting actually reads; the others are reset to their defaults (or, for a
 * balancing method's options, left out) so that a cell's config hash changes only when something
 * that can affect it changes.
 */
export function methodOptionsFor(setting: Setting, method: MethodOptions): CellMethodOptions {
  const resolved: CellMethodOptions = { ...method };
  const fields = resolved as Record<string, unknown>;
  for (const [field, spec] of Object.entries(METHOD_OPTIONS) as [string, OptionSpec<unknown>][]) {
    if (readBy(setting, spec)) continue;
    if (onlyBalancing(spec)) delete fields[field];
    else fields[field] = spec.default;
  }
  // Sorted so the config file reads the same however the benchmark listed the tasks.
  resolved.taskWeights = Object.fromEntries(Object.entries(resolved.taskWeights).sort(([a], [b]) => a.localeCompare(b)));
  return resolved;
}

/** A cell's method options with every option present: the ones its setting does not read take their defaults. */
export function completeMethodOptions(method: CellMethodOptions): MethodOptions {
  return { ...(defaultsOf(METHOD_OPTIONS) as MethodOptions), ...method };
}

/** The README's table of benchmark-file options, generated from the tables above. */
export function optionsTableMarkdown(): string {
  const blocks: [string, OptionTable][] = [
    ['train', TRAIN_OPTIONS],
    ['method', METHOD_OPTIONS],
    ['relatedness[]', RELATEDNESS_OPTIONS],
  ];
  const rows = blocks.flatMap(([block, options]) =>
    Object.values(options).map((spec) => {
      const shown = hasDefault(spec) ? `\`${JSON.stringify(spec.default)}\`` : spec.optional ? 'none' : 'required';
      const used =
        spec.usedBy === undefined
          ? ''
          : ` Read by ${spec.usedBy === 'multi-task' ? 'multi-task settings' : spec.usedBy.map((c) => `+${c}`).join(' and ')}.`;
      return `| \`${block}.${spec.key.join('.')}\` | ${shown} | ${spec.doc}${used} |`;
    }),
  );
  return ['| option | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
