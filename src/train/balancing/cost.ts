import { type Setting, settingSpec } from '../../config/settings.js';

/**
 * What one training step of a setting costs relative to plain `mtl` on the same network, from
 * the passes its method runs (README "Balancing methods", cost per step): tfjs differentiates one
 * scalar per forward pass, so each per-task gradient is a forward and a backward pass. The
 * constants are the CPU-time ratios bench-train measured with two tasks (convnet-s, wasm).
 */
export function relativeStepCost(setting: Setting, taskCount: number): number {
  const spec = settingSpec(setting);
  const tasks = Math.max(1, taskCount);
  switch (spec.balancing) {
    case 'pcgrad':
    case 'mgda':
    case 'cagrad':
      // One pass per task, one more for the coupling terms.
      return tasks + (spec.couplings.length > 0 ? 1 : 0);
    case 'gradnorm':
      // The weighted pass, then one per task that stops at the last shared layer (about half a step each).
      return 1 + 0.5 * tasks;
    case 'famo':
      // One pass, and a forward pass after the update.
      return 1.3;
    default:
      return 1;
  }
}
