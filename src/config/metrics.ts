import type { TaskKind } from '../datasets/types.js';

/** The metrics a task of each kind is scored with; the first is the usual primary metric. */
export const METRICS_BY_KIND = {
  categorical: ['accuracy', 'macro_f1'],
  multilabel: ['label_accuracy', 'macro_f1'],
} as const satisfies Record<TaskKind, readonly string[]>;

export type CategoricalMetric = (typeof METRICS_BY_KIND.categorical)[number];
export type MultilabelMetric = (typeof METRICS_BY_KIND.multilabel)[number];
export type MetricName = CategoricalMetric | MultilabelMetric;

/** Every metric name, in the order reports list a task's metrics. */
export const METRIC_NAMES = ['accuracy', 'label_accuracy', 'macro_f1'] as const satisfies readonly MetricName[];

export function metricAppliesTo(kind: TaskKind, metric: string): metric is MetricName {
  return (METRICS_BY_KIND[kind] as readonly string[]).includes(metric);
}
