/**
 * The settings grammar: which network is trained (one per task, or one shared by all tasks) and
 * which couplings of method.md its loss adds. A setting's name is the only place these facts
 * are spelled; every other module asks this one.
 */

/** The loss terms that couple tasks through relatedness (method.md): soft co-annotation, distribution matching. */
export const COUPLINGS = ['sca', 'dm'] as const;
export type Coupling = (typeof COUPLINGS)[number];

export interface SettingSpec {
  /** One network shared by every task (false: one single-task network per task). */
  multiTask: boolean;
  couplings: readonly Coupling[];
}

const SETTING_TABLE = {
  stl: { multiTask: false, couplings: [] },
  mtl: { multiTask: true, couplings: [] },
  'mtl+sca': { multiTask: true, couplings: ['sca'] },
  'mtl+dm': { multiTask: true, couplings: ['dm'] },
  'mtl+sca+dm': { multiTask: true, couplings: ['sca', 'dm'] },
} as const satisfies Record<string, SettingSpec>;

export type Setting = keyof typeof SETTING_TABLE;

/** Every setting, in the order reports list them (the single-task baseline first). */
export const SETTINGS = Object.keys(SETTING_TABLE) as [Setting, ...Setting[]];

export function isSetting(name: string): name is Setting {
  return Object.prototype.hasOwnProperty.call(SETTING_TABLE, name);
}

export function settingSpec(setting: Setting): SettingSpec {
  return SETTING_TABLE[setting];
}

export function usesCoupling(setting: Setting, coupling: Coupling): boolean {
  return (SETTING_TABLE[setting].couplings as readonly Coupling[]).includes(coupling);
}

/** True when the setting's loss couples tasks at all, so relatedness must be resolved for it. */
export function isCoupled(setting: Setting): boolean {
  return SETTING_TABLE[setting].couplings.length > 0;
}
