import { z } from 'zod';

/** How the training labels are thinned before training (validation and test keep every label). */
export type RegimeSpec =
  | { kind: 'full' }
  /** Split train into one part per task; `overlap` is the fraction of samples that keep every label. */
  | { kind: 'disjoint'; overlap: number }
  /** `task` keeps its label on `fraction` of the samples; the other tasks keep all of theirs. */
  | { kind: 'scarce'; task: string; fraction: number }
  /** The tasks come from different datasets: no sample carries two tasks (already so in the data). */
  | { kind: 'multi-source' };

const overlapMessage = 'expected a fraction in [0, 1)';
const fractionMessage = 'expected a fraction in (0, 1]';

const regimeObjectSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('full') }),
    z.strictObject({
      kind: z.literal('disjoint'),
      overlap: z.number({ error: overlapMessage }).min(0, { error: overlapMessage }).lt(1, { error: overlapMessage }).default(0),
    }),
    z.strictObject({
      kind: z.literal('scarce'),
      task: z.string({ error: 'expected the task that keeps few labels' }).min(1),
      fraction: z.number({ error: fractionMessage }).gt(0, { error: fractionMessage }).max(1, { error: fractionMessage }),
    }),
    z.strictObject({ kind: z.literal('multi-source') }),
  ],
  { error: 'expected kind: full, disjoint, scarce or multi-source' },
);

/** A regime as a benchmark file writes it; `full` and `multi-source` need no parameters, so a bare word is accepted for them. */
export const regimeSchema: z.ZodType<RegimeSpec> = z.preprocess(
  (value) => (value === 'full' || value === 'multi-source' ? { kind: value } : value),
  regimeObjectSchema,
);
