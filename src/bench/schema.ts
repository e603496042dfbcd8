import fs from 'node:fs';
import yaml from 'js-yaml';
import { z } from 'zod';
import { METRIC_NAMES } from '../config/metrics.js';
import { METHOD_OPTIONS, RELATEDNESS_OPTIONS, TRAIN_OPTIONS, blockSchema } from '../config/options.js';
import { regimeSchema } from '../config/regimes.js';
import { settingSchema } from '../config/settings.js';
import { identifier, nonNegativeInt, percent, positiveInt } from '../config/validators.js';
import { UserError, errorMessage } from '../util/errors.js';
import { formatKeyPath } from '../util/yaml_file.js';

/**
 * The benchmark file: one YAML document describing a study (dataset or sources, tasks, training,
 * method options, relatedness, regimes, settings, seeds, the paper's values and CI checks).
 * Keys are snake_case as users write them; the option blocks (train, method, relatedness) come
 * out of parsing as the configuration module's camelCase records, defaults filled in.
 * Every metric value a user writes (reference, check) is in percent, as the paper reports them.
 */

const metricName = z.enum(METRIC_NAMES, { error: `expected one of ${METRIC_NAMES.join(', ')}` });

const taskSchema = z.strictObject({
  primary: metricName,
});

const sourceSchema = z.strictObject({
  dataset: identifier('a dataset id'),
  task: z.string({ error: 'expected the task name in that dataset' }).min(1),
});

const backboneSchema = z.union(
  [
    z.string().min(1),
    z.strictObject({
      name: z.string({ error: 'expected a backbone name' }).min(1),
      pretrained: z.string({ error: 'expected a path or URL of a tfjs Layers model' }).min(1).optional(),
    }),
  ],
  { error: 'expected a backbone name, or {name, pretrained}' },
);

const checkSchema = z.strictObject({
  regime: z.string({ error: 'expected a regime name' }).min(1),
  setting: settingSchema,
  task: z.string({ error: 'expected a task name' }).min(1),
  metric: metricName,
  expected: percent,
  tolerance: z
    .number({ error: 'expected a tolerance in percentage points' })
    .positive({ error: 'expected a tolerance > 0 in percentage points' }),
});

export const benchmarkSchema = z.strictObject({
  name: identifier('a benchmark name'),
  description: z.string({ error: 'expected a text' }).default(''),
  dataset: identifier('a dataset id').optional(),
  sources: z.record(z.string(), sourceSchema).optional(),
  tasks: z.record(z.string(), taskSchema),
  input: z.strictObject({ size: positiveInt }),
  backbone: backboneSchema,
  train: blockSchema(TRAIN_OPTIONS),
  method: blockSchema(METHOD_OPTIONS).prefault({}),
  relatedness: z.array(blockSchema(RELATEDNESS_OPTIONS), { error: 'expected a list of {from, to, source}' }).default([]),
  regimes: z.record(identifier('a regime name'), regimeSchema),
  settings: z.array(settingSchema, { error: 'expected a list of setting names' }).min(1, { error: 'expected at least one setting' }),
  seeds: z.array(nonNegativeInt, { error: 'expected a list of whole numbers' }).min(1, { error: 'expected at least one seed' }),
  reference: z.record(z.string(), z.partialRecord(metricName, percent)).default({}),
  check: z.array(checkSchema, { error: 'expected a list of {regime, setting, task, metric, expected, tolerance}' }).default([]),
});

export type BenchmarkDoc = z.infer<typeof benchmarkSchema>;

export interface LoadedBenchmark {
  /** Where it was read from, as the user named it (used as the prefix of every error message). */
  file: string;
  doc: BenchmarkDoc;
}

function valueAt(root: unknown, segments: readonly PropertyKey[]): unknown {
  let value: unknown = root;
  for (const s of segments) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[s];
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const parent = formatKeyPath(issue.path);
    const keys = issue.keys.map((k) => (parent ? `${parent}.${k}` : k));
    return `${keys.join(', ')}: unknown key${keys.length > 1 ? 's' : ''}`;
  }
  const where = formatKeyPath(issue.path) || '(top level)';
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) return `${where}: missing (required)`;
  return `${where}: ${issue.message}`;
}

/** Structural checks the schema cannot express alone, each naming its key path. */
function checkInternalConsistency(doc: BenchmarkDoc): string[] {
  const problems: string[] = [];
  const taskNames = Object.keys(doc.tasks);
  if (taskNames.length === 0) problems.push('tasks: expected at least one task');
  if (doc.dataset && doc.sources) problems.push('sources: give either dataset or sources, not both');
  if (!doc.dataset && !doc.sources) problems.push('dataset: missing (required unless sources is given)');
  if (doc.sources) {
    for (const task of taskNames) if (!doc.sources[task]) problems.push(`sources: task "${task}" has no source`);
    for (const task of Object.keys(doc.sources))
      if (!doc.tasks[task]) problems.push(`sources.${task}: not one of the tasks (${taskNames.join(', ')})`);
  }
  const isTask = (name: string) => Object.prototype.hasOwnProperty.call(doc.tasks, name);
  const unknownTask = (where: string, name: string) => `${where}: unknown task "${name}"; the tasks are ${taskNames.join(', ')}`;
  if (Object.keys(doc.regimes).length === 0) problems.push('regimes: expected at least one regime');
  for (const [name, regime] of Object.entries(doc.regimes)) {
    if (regime.kind === 'scarce' && !isTask(regime.task)) problems.push(unknownTask(`regimes.${name}.task`, regime.task));
    if (regime.kind === 'multi-source' && !doc.sources)
      problems.push(`regimes.${name}: multi-source needs sources (task → {dataset, task})`);
    if (regime.kind !== 'multi-source' && doc.sources)
      problems.push(`regimes.${name}: with sources, no sample carries two tasks; use kind: multi-source`);
  }
  const seenSettings = new Set<string>();
  doc.settings.forEach((s, i) => {
    if (seenSettings.has(s)) problems.push(`settings[${i}]: "${s}" is listed twice`);
    seenSettings.add(s);
  });
  const seenSeeds = new Set<number>();
  doc.seeds.forEach((s, i) => {
    if (seenSeeds.has(s)) problems.push(`seeds[${i}]: ${s} is listed twice`);
    seenSeeds.add(s);
  });
  const pairs = new Set<string>();
  doc.relatedness.forEach((r, i) => {
    if (!isTask(r.from)) problems.push(unknownTask(`relatedness[${i}].from`, r.from));
    if (!isTask(r.to)) problems.push(unknownTask(`relatedness[${i}].to`, r.to));
    if (r.from === r.to) problems.push(`relatedness[${i}]: a task cannot be related to itself`);
    if (r.prior !== undefined && r.source !== 'prior') problems.push(`relatedness[${i}].prior: only applies with source: prior`);
    const key = `${r.from}->${r.to}`;
    if (pairs.has(key)) problems.push(`relatedness[${i}]: ${key} is listed twice`);
    pairs.add(key);
  });
  for (const task of Object.keys(doc.method.taskWeights))
    if (!isTask(task)) problems.push(unknownTask(`method.task_weights.${task}`, task));
  for (const task of Object.keys(doc.reference)) if (!isTask(task)) problems.push(unknownTask(`reference.${task}`, task));
  doc.check.forEach((c, i) => {
    if (!isTask(c.task)) problems.push(unknownTask(`check[${i}].task`, c.task));
    if (!Object.prototype.hasOwnProperty.call(doc.regimes, c.regime))
      problems.push(`check[${i}].regime: unknown regime "${c.regime}"; the regimes are ${Object.keys(doc.regimes).join(', ')}`);
    if (!doc.settings.includes(c.setting)) problems.push(`check[${i}].setting: "${c.setting}" is not among the benchmark's settings`);
  });
  return problems;
}

function fail(file: string, problems: string[]): never {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  throw new UserError(`${file}: ${problems[0]}${more}`);
}

/** Validates an already-parsed YAML value; `file` prefixes every message. */
export function parseBenchmark(value: unknown, file: string): LoadedBenchmark {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(file, ['expected a mapping of keys (name, dataset, tasks, ...)']);
  const parsed = benchmarkSchema.safeParse(value);
  if (!parsed.success)
    fail(
      file,
      parsed.error.issues.map((issue) => describeIssue(issue, value)),
    );
  const problems = checkInternalConsistency(parsed.data);
  if (problems.length > 0) fail(file, problems);
  return { file, doc: parsed.data };
}

/** Reads and validates one benchmark file; errors name the file (and line for YAML syntax). */
export function loadBenchmarkFile(file: string): LoadedBenchmark {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file}: no such benchmark file` : `${file}: cannot read: ${errorMessage(err)}`);
  }
  let value: unknown;
  try {
    value = yaml.load(text, { filename: file, schema: yaml.CORE_SCHEMA });
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      const line = err.mark ? `:${err.mark.line + 1}:${err.mark.column + 1}` : '';
      throw new UserError(`${file}${line}: invalid YAML: ${err.reason}`);
    }
    throw err;
  }
  return parseBenchmark(value, file);
}
