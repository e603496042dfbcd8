import type { RelatednessDiagnostic } from '../method/relatedness_diagnostic.js';
import type { CellRecord } from '../runs/store.js';
import { mean, tidy } from './stats.js';

/**
 * How crisp each relatedness pair of a benchmark was, and where it came from, from the
 * diagnostic every coupled cell records in metrics.json: what a reader needs beside the summary to
 * read "DM hurts here" together with "and this relatedness is diffuse".
 *
 * A table (prior or file) is the same in every cell, so it is one row; counts on co-annotated
 * samples (data) depend on the regime's draw, so they get a row per regime, with the sharpness
 * averaged over the cells and the co-annotated count's range.
 */
export interface RelatednessRow {
  pair: string;
  kind: string;
  source: string;
  description?: string;
  /** The sharpness blend β, 0 when none. */
  blend: number;
  /** For `data` only: the regime the counts come from. */
  regime?: string;
  /** Mean over the cells (the same value in every cell for a table). */
  sharpness: number;
  uninformedSharpness: number;
  entriesAboveHalf: number;
  entries: number;
  /** For `data`: the fewest and most co-annotated training samples over the cells. */
  coannotated?: { low: number; high: number };
  cells: number;
}

export function buildRelatednessRows(done: CellRecord[], regimes: string[]): RelatednessRow[] {
  const groups = new Map<string, { first: { pair: string; regime: string }; diagnostics: RelatednessDiagnostic[] }>();
  for (const cell of done) {
    for (const [pair, diagnostic] of Object.entries(cell.metrics?.relatedness ?? {})) {
      const regime = diagnostic.source === 'data' ? cell.config.regime.name : '';
      const key = `${pair}|${diagnostic.source}|${diagnostic.blend ?? 0}|${regime}`;
      const group = groups.get(key) ?? { first: { pair, regime }, diagnostics: [] };
      group.diagnostics.push(diagnostic);
      groups.set(key, group);
    }
  }
  const rows = [...groups.values()].map(({ first, diagnostics }) => {
    const d = diagnostics[0]!;
    const counts = diagnostics.map((x) => x.coannotated).filter((c): c is number => c !== undefined);
    const row: RelatednessRow = {
      pair: first.pair,
      kind: d.kind,
      source: d.source,
      ...(d.description === undefined ? {} : { description: d.description }),
      blend: d.blend ?? 0,
      ...(first.regime ? { regime: first.regime } : {}),
      sharpness: tidy(mean(diagnostics.map((x) => x.sharpness))),
      uninformedSharpness: tidy(mean(diagnostics.map((x) => x.uninformedSharpness))),
      entriesAboveHalf: tidy(mean(diagnostics.map((x) => x.entriesAboveHalf))),
      entries: d.entries,
      ...(counts.length > 0 ? { coannotated: { low: Math.min(...counts), high: Math.max(...counts) } } : {}),
      cells: diagnostics.length,
    };
    return row;
  });
  const regimeRank = (r: RelatednessRow) => (r.regime === undefined ? -1 : regimes.indexOf(r.regime));
  return rows.sort((a, b) => (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : 0) || a.blend - b.blend || regimeRank(a) - regimeRank(b));
}

/** How many co-annotated training samples the counts came from: one number, or the range over the cells; ? when unknown. */
function coannotatedText(row: RelatednessRow): string {
  const range = row.coannotated;
  if (!range) return '?';
  return range.low === range.high ? `${range.low}` : `${range.low}-${range.high}`;
}

/** "file (the taxonomy: …)", "data, 120–140 co-annotated samples", plus β when not 0; plain text. */
export function provenanceText(row: RelatednessRow): string {
  const where =
    row.source === 'data'
      ? `data${row.regime ? ` in ${row.regime}` : ''}, ${coannotatedText(row)} co-annotated training samples`
      : `${row.source}${row.description ? ` (${row.description})` : ''}`;
  return row.blend === 0 ? where : `${where}, blended with beta ${row.blend}`;
}

/** One line per pair for the terminal and the HTML note: "subgroup->group: sharpness 1.00 (…), 95/760 entries above 0.5, file (…)". */
export function relatednessLine(row: RelatednessRow): string {
  return (
    `${row.pair}: sharpness ${row.sharpness.toFixed(2)} (uninformed ${row.uninformedSharpness.toFixed(2)}), ` +
    `${Number(row.entriesAboveHalf.toFixed(1))}/${row.entries} entries above 0.5, ${provenanceText(row)}`
  );
}
