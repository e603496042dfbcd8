import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { buildReport, type Report } from './aggregate.js';
import { collectRuns } from '../runs/collect.js';
import { leaderboardCsv, summaryCsv } from './csv.js';
import { reportHtml } from './html.js';

const REPORT_FILES = { leaderboard: 'leaderboard.csv', summary: 'summary.csv', html: 'report.html' } as const;

export interface WrittenReport {
  report: Report;
  files: string[];
}

/** Reads the run folders, writes leaderboard.csv, summary.csv and report.html into `outDir`. */
export async function writeReports(dirs: string[], outDir: string): Promise<WrittenReport> {
  return writeReportFiles(buildReport(collectRuns(dirs)), outDir);
}

export async function writeReportFiles(report: Report, outDir: string): Promise<WrittenReport> {
  const files = [
    [REPORT_FILES.leaderboard, leaderboardCsv(report)],
    [REPORT_FILES.summary, summaryCsv(report)],
    [REPORT_FILES.html, reportHtml(report)],
  ] as const;
  for (const [name, text] of files) await writeFileAtomic(path.join(outDir, name), text);
  return { report, files: files.map(([name]) => path.join(outDir, name)) };
}
