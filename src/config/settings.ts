import { z } from 'zod';
import { alternatives } from './validators.js';

/**
 * The settings grammar: which network is trained (one per task, or one shared by all tasks),
 * which couplings of method.md its loss adds, and which balancing method weighs its tasks. A
 * setting's name is the only place these facts are spelled; every other module asks this one.
 *
 *   setting   := "stl" | "mtl" coupling* method?
 *   coupling  := "+sca" | "+dm"           (each at most once, in this order)
 *   method    := "+uw" | "+dwa" | "+gradnorm" | "+pcgrad" | "+mgda" | "+cagrad" | "+famo"
 *
 * Plain `mtl` (no method) weighs its tasks equally.
 */

/** The loss terms that couple tasks through relatedness (method.md): soft co-annotation, distribution matching. */
export const COUPLINGS = ['sca', 'dm'] as const;
export type Coupling = (typeof COUPLINGS)[number];

/** How a multi-task setting weighs its tasks, or combines their gradients, instead of summing them. */
export const BALANCING_METHODS = ['uw', 'dwa', 'gradnorm', 'pcgrad', 'mgda', 'cagrad', 'famo'] as const;
export type BalancingMethod = (typeof BALANCING_METHODS)[number];

/** "+a+b" | "+a" | "+b" | "": every subset of a list, in the list's order. */
type OrderedSubsets<T extends readonly string[]> = T extends readonly [infer Head extends string, ...infer Rest extends string[]]
  ? `+${Head}${OrderedSubsets<Rest>}` | OrderedSubsets<Rest>
  : '';

export type Setting = 'stl' | `mtl${OrderedSubsets<typeof COUPLINGS>}${'' | `+${BalancingMethod}`}`;

export interface SettingSpec {
  /** One network shared by every task (false: one single-task network per task). */
  multiTask: boolean;
  couplings: readonly Coupling[];
  /** Absent: the tasks' losses are summed with their fixed weights. */
  balancing?: BalancingMethod;
}

/** The single-task baseline every other setting is compared with. */
const BASELINE_SETTING: Setting = 'stl';

const GRAMMAR_TEXT =
  `a setting is stl, or mtl followed by any of ${COUPLINGS.map((c) => `+${c}`).join(', ')} (in that order) ` +
  `and at most one balancing method ${alternatives(BALANCING_METHODS.map((m) => `+${m}`))} (e.g. mtl+sca+dm, mtl+pcgrad)`;

export type ParsedSetting = { ok: true; setting: Setting; spec: SettingSpec } | { ok: false; problem: string };

/** Reads a setting name; a name outside the grammar gets one line saying what the grammar allows. */
export function parseSetting(name: string): ParsedSetting {
  const unknown: ParsedSetting = { ok: false, problem: `unknown setting "${name}"; ${GRAMMAR_TEXT}` };
  const [base, ...suffixes] = name.split('+');
  if (base === 'stl' && suffixes.length === 0) return { ok: true, setting: 'stl', spec: { multiTask: false, couplings: [] } };
  if (base !== 'mtl') return unknown;
  const couplings = suffixes.filter((s): s is Coupling => (COUPLINGS as readonly string[]).includes(s));
  const methods = suffixes.filter((s): s is BalancingMethod => (BALANCING_METHODS as readonly string[]).includes(s));
  if (couplings.length + methods.length !== suffixes.length || methods.length > 1 || new Set(couplings).size !== couplings.length)
    return unknown;
  const spec: SettingSpec = {
    multiTask: true,
    couplings: COUPLINGS.filter((c) => couplings.includes(c)),
    ...(methods[0] ? { balancing: methods[0] } : {}),
  };
  const canonical = canonicalName(spec);
  if (canonical !== name)
    return {
      ok: false,
      problem: `setting "${name}" is written ${canonical}: couplings come in the order ${COUPLINGS.join(', ')}, the balancing method last`,
    };
  return { ok: true, setting: canonical, spec };
}

function canonicalName(spec: SettingSpec): Setting {
  if (!spec.multiTask) return 'stl';
  return ['mtl', ...spec.couplings, ...(spec.balancing ? [spec.balancing] : [])].join('+') as Setting;
}

export function isSetting(name: string): name is Setting {
  return parseSetting(name).ok;
}

export function settingSpec(setting: Setting): SettingSpec {
  const parsed = parseSetting(setting);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.spec;
}

/**
 * Every setting, in the order reports list them: the single-task baseline, plain multi-task
 * training and the couplings (the paper's settings), then each coupling combination with each
 * balancing method, so that the standard methods (mtl+uw, mtl+dwa, …) follow the paper's settings.
 */
export const SETTINGS: readonly [Setting, ...Setting[]] = (() => {
  const couplingSets = Array.from({ length: 2 ** COUPLINGS.length }, (_, mask) => COUPLINGS.filter((_c, i) => (mask >> i) & 1));
  return [
    BASELINE_SETTING,
    ...couplingSets.map((couplings) => canonicalName({ multiTask: true, couplings })),
    ...couplingSets.flatMap((couplings) => BALANCING_METHODS.map((balancing) => canonicalName({ multiTask: true, couplings, balancing }))),
  ];
})();

/** Settings in the order of SETTINGS, each once. */
export function inSettingOrder(settings: readonly Setting[]): Setting[] {
  return SETTINGS.filter((s) => settings.includes(s));
}

export function usesCoupling(setting: Setting, coupling: Coupling): boolean {
  return settingSpec(setting).couplings.includes(coupling);
}

/** True when the setting's loss couples tasks at all, so relatedness must be resolved for it. */
export function isCoupled(setting: Setting): boolean {
  return settingSpec(setting).couplings.length > 0;
}

/** The setting's balancing method; undefined for equal weighting (and for stl). */
export function balancingMethod(setting: Setting): BalancingMethod | undefined {
  return settingSpec(setting).balancing;
}

/** A setting name in a benchmark file, checked against the grammar. */
export const settingSchema: z.ZodType<Setting> = z.custom<Setting>((value) => typeof value === 'string' && isSetting(value), {
  error: (issue) =>
    typeof issue.input === 'string'
      ? (parseSetting(issue.input) as { problem: string }).problem
      : `expected a setting name; ${GRAMMAR_TEXT}`,
});
