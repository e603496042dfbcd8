import type { CellRecord } from '../runs/store.js';
import { band, type BandPoint } from './curves.js';
import type { BenchmarkLayout } from './layout.js';

/**
 * Each SCA and DM direction's target (its teacher) scored on validation beside the head it
 * teaches (its student), per epoch, from the `teachers` of history.json. When the teacher scores
 * below its student, the direction pulls the head toward something worse than itself.
 */
export interface TeacherChart {
  regime: string;
  setting: string;
  /** The term name, e.g. "dm:subgroup->group". */
  direction: string;
  /** The task taught, and the metric both lines show (its primary metric), in percent. */
  task: string;
  metric: string;
  teacher: BandPoint[];
  student: BandPoint[];
}

/** "dm:subgroup->group" → "group". */
function studentOf(direction: string): string {
  return direction.slice(direction.indexOf('->') + 2);
}

export function buildTeacherCharts(layout: BenchmarkLayout, done: CellRecord[]): TeacherChart[] {
  const charts: TeacherChart[] = [];
  for (const regime of layout.regimes) {
    for (const setting of layout.settings) {
      const histories = done
        .filter((c) => c.config.regime.name === regime && c.config.setting === setting && c.history && c.history.length > 0)
        .map((c) => c.history!);
      const directions = [...new Set(histories.flat().flatMap((e) => Object.keys(e.teachers ?? {})))];
      for (const direction of directions) {
        const task = layout.tasks.find((t) => t.name === studentOf(direction));
        if (!task) continue;
        const teacher = band(histories, (e) => (e.teachers?.[direction]?.[task.primary] ?? Number.NaN) * 100);
        const student = band(histories, (e) => (e.val[task.name]?.[task.primary] ?? Number.NaN) * 100);
        if (teacher.length > 0 && student.length > 0)
          charts.push({ regime, setting, direction, task: task.name, metric: task.primary, teacher, student });
      }
    }
  }
  return charts;
}

const COUPLING_WORDS: Record<string, string> = { dm: 'distribution matching', sca: 'soft co-annotation' };

/**
 * One sentence per chart whose teacher scores below its student at the last epoch both reached
 * (means over the seeds), plain ASCII.
 */
export function teacherBelowStudent(charts: TeacherChart[]): string[] {
  const sentences: string[] = [];
  for (const chart of charts) {
    const last = Math.min(chart.teacher[chart.teacher.length - 1]!.epoch, chart.student[chart.student.length - 1]!.epoch);
    const teacher = chart.teacher.find((p) => p.epoch === last);
    const student = chart.student.find((p) => p.epoch === last);
    if (!teacher || !student || !(teacher.mean < student.mean)) continue;
    const coupling = COUPLING_WORDS[chart.direction.slice(0, chart.direction.indexOf(':'))] ?? chart.direction;
    const seeds = Math.min(teacher.seeds, student.seeds);
    sentences.push(
      `${chart.regime}, ${chart.setting}: the ${chart.direction} teacher scores below its student at epoch ${last} ` +
        `(${chart.task} ${chart.metric} on validation ${teacher.mean.toFixed(2)} against ${student.mean.toFixed(2)}, ` +
        `mean of ${seeds} seed${seeds > 1 ? 's' : ''}): ${coupling} pulls the ${chart.task} head toward something worse than itself.`,
    );
  }
  return sentences;
}
