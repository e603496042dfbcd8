import * as tf from '@tensorflow/tfjs';
import type { CouplingTensors, ObjectiveOptions } from '../../method/losses.js';
import { objectiveTermNames } from '../../method/losses.js';
import type { MultiTaskNetwork } from '../../model/network.js';
import type { Optimizer } from '../optimizer.js';
import type { TrainStep } from '../trainer.js';
import type { Balancer } from './balancers.js';
import { BatchPasses } from './passes.js';

/**
 * The training step of a setting with a balancing method: the method's passes and combination,
 * then the optimiser, then the method's own bookkeeping. The values it reports are those of a
 * plain step (the unbalanced objective and its terms), then `weight:<task>`, the factor the step
 * gave each task's loss gradient.
 */
export function createBalancedStep(
  net: MultiTaskNetwork,
  optimizer: Optimizer,
  couplings: readonly CouplingTensors[],
  options: ObjectiveOptions,
  imageShape: [number, number, number],
  balancer: Balancer,
): TrainStep {
  const tasks = net.heads.map((h) => h.task);
  const objectiveNames = ['total', ...objectiveTermNames(tasks, couplings, options)];
  const termNames = [...objectiveNames, ...tasks.map((t) => `weight:${t}`)];
  return {
    termNames,
    run(images, labels, learningRate) {
      const batch = new BatchPasses(net, couplings, options, images, imageShape, labels);
      try {
        return tf.tidy(() => {
          const { gradients, factors } = balancer.gradients(batch);
          // One read of everything the step reports and the method's bookkeeping needs.
          const row = tf.concat([batch.logged, factors, batch.supervised]).dataSync();
          const values = Float32Array.from(row.subarray(0, termNames.length));
          const taskLosses = Array.from(row.subarray(termNames.length));
          const finite = values.every((v) => Number.isFinite(v));
          if (finite) {
            optimizer.apply(gradients, learningRate);
            balancer.afterUpdate(batch, taskLosses);
          }
          return { values, finite };
        });
      } finally {
        batch.dispose();
      }
    },
    endEpoch() {
      balancer.endEpoch();
    },
  };
}
