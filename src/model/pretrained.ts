import * as tf from '@tensorflow/tfjs';
import { UserError, errorMessage } from '../util/errors.js';
import { getBackboneEntry, loadBackboneManifest, type BackboneEntry, type BackboneManifest } from './backbone_manifest.js';
import { fetchedBackboneFolder } from './backbone_store.js';
import { fileSystemModelHandler } from './io.js';

/**
 * A pretrained backbone of backbones.yaml, fetched here, as the network builder uses it: the model
 * cut at its feature layer and taking the benchmark's input size, plus the pixel range its
 * weights expect.
 */
export interface PretrainedBackbone {
  model: tf.LayersModel;
  inputRange: readonly [number, number];
}

/** Sets every input shape of a Layers topology (Keras JSON) to [batch, size, size, channels]. */
function setInputShape(topology: unknown, size: number, channels: number): number {
  let changed = 0;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    for (const key of ['batch_input_shape', 'batchInputShape', 'batch_shape']) {
      if (Array.isArray(record[key]) && (record[key] as unknown[]).length === 4) {
        record[key] = [null, size, size, channels];
        changed++;
      }
    }
    Object.values(record).forEach(visit);
  };
  visit(topology);
  return changed;
}

/**
 * Loads the fetched model, rebuilt for `inputSize` (its convolutions take any size; only the
 * input layer names one) and cut at the feature layer. The classifier layers after the cut are
 * disposed at once: nothing uses their weights.
 */
async function loadCut(entry: BackboneEntry, folder: string, inputSize: number, channels: number): Promise<tf.LayersModel> {
  const artifacts = await fileSystemModelHandler(folder).load!();
  if (setInputShape(artifacts.modelTopology, inputSize, channels) === 0) {
    throw new UserError(
      `pretrained backbone "${entry.id}": its model.json declares no 4-dimensional input shape to adapt to ${inputSize}×${inputSize}`,
    );
  }
  let full: tf.LayersModel;
  try {
    full = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    throw new UserError(`pretrained backbone "${entry.id}" (${folder}) could not be loaded: ${errorMessage(err).split('\n')[0]}`);
  }
  let featureLayer: tf.layers.Layer;
  try {
    featureLayer = full.getLayer(entry.features);
  } catch {
    full.dispose();
    throw new UserError(
      `pretrained backbone "${entry.id}": no layer named "${entry.features}" (backbones.yaml features) in ${folder}/model.json`,
    );
  }
  const cut = tf.model({ inputs: full.inputs, outputs: featureLayer.output as tf.SymbolicTensor, name: entry.id });
  const kept = new Set(cut.layers);
  for (const layer of full.layers) if (!kept.has(layer)) layer.dispose();
  return cut;
}

/** The pretrained backbone `id`, which must have been fetched (`mtl-bench backbones fetch ID`). */
export async function loadPretrainedBackbone(
  id: string,
  options: { inputSize: number; channels: number; manifest?: BackboneManifest; home?: string },
): Promise<PretrainedBackbone> {
  const entry = getBackboneEntry(options.manifest ?? loadBackboneManifest(), id);
  if (options.channels !== entry.input.channels) {
    throw new UserError(`pretrained backbone "${id}" takes ${entry.input.channels}-channel images, the data has ${options.channels}`);
  }
  if (options.inputSize < entry.input.min_size) {
    throw new UserError(
      `pretrained backbone "${id}" needs inputs of at least ${entry.input.min_size}×${entry.input.min_size}, got ${options.inputSize}`,
    );
  }
  const folder = fetchedBackboneFolder(entry.id, options.home);
  if (!folder) throw new UserError(`pretrained backbone "${id}" is not fetched here; run: mtl-bench backbones fetch ${id}`);
  return { model: await loadCut(entry, folder, options.inputSize, options.channels), inputRange: entry.input.range };
}
