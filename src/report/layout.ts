export interface TaskInfo {
  name: string;
  primary: string;
  /** From benchmark.json; unknown for folders without one. */
  kind?: string;
  /** Classes or labels, from benchmark.json; unknown for folders written before it was recorded. */
  classes?: number;
}

/** What every part of a benchmark's report is laid out by: its tasks, regimes and settings in reading order. */
export interface BenchmarkLayout {
  name: string;
  tasks: TaskInfo[];
  regimes: string[];
  settings: string[];
  /** task → metric → the paper's value, in percent. */
  reference: Record<string, Record<string, number>>;
}
