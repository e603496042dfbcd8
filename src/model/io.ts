import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError, errorMessage } from '../util/errors.js';

/**
 * Reading and writing tfjs Layers models (model.json + binary weight shards) on the local disk.
 * @tensorflow/tfjs registers no file:// handler under Node (only tfjs-node does), so this is
 * the small IOHandler that the tfjs format needs.
 */

const MODEL_JSON = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

function isHttp(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** A path, a file:// URL, a folder holding model.json, or model.json itself → the model.json path. */
function resolveModelJsonPath(location: string): string {
  let local = location;
  if (/^file:\/\//i.test(location)) local = fileURLToPath(location);
  local = path.resolve(local);
  try {
    if (fs.statSync(local).isDirectory()) local = path.join(local, MODEL_JSON);
  } catch {
    // Reported below with the path that was tried.
  }
  return local;
}

export function fileSystemModelHandler(directory: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = resolveModelJsonPath(directory);
      let text: string;
      try {
        text = await fs.promises.readFile(jsonPath, 'utf8');
      } catch (err) {
        throw new UserError(`pretrained model: cannot read ${jsonPath}: ${errorMessage(err)}`);
      }
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(text) as tf.io.ModelJSON;
      } catch (err) {
        throw new UserError(`pretrained model: ${jsonPath} is not valid JSON: ${errorMessage(err)}`);
      }
      if (!modelJson || typeof modelJson !== 'object' || !modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
        throw new UserError(`pretrained model: ${jsonPath} is not a tfjs Layers model.json (needs "modelTopology" and "weightsManifest")`);
      }
      const folder = path.dirname(jsonPath);
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          for (const shard of group.paths) {
            const shardPath = path.resolve(folder, shard);
            if (path.relative(folder, shardPath).startsWith('..'))
              throw new UserError(`pretrained model: ${jsonPath} names a weight file outside its folder: ${shard}`);
            let bytes: Buffer;
            try {
              bytes = await fs.promises.readFile(shardPath);
            } catch (err) {
              throw new UserError(`pretrained model: cannot read weight file ${shardPath} named in ${jsonPath}: ${errorMessage(err)}`);
            }
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        return [tf.io.getWeightSpecs(manifest), tf.io.concatenateArrayBuffers(buffers)];
      });
    },

    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.concatenateArrayBuffers(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
      };
      // Weights first: a model.json never points at weights that are not there yet.
      await writeFileAtomic(path.join(directory, WEIGHTS_FILE), new Uint8Array(weightData));
      await writeFileAtomic(path.join(directory, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** Saves a Layers model as `directory`/model.json + weights.bin. */
export async function saveLayersModel(model: tf.LayersModel, directory: string): Promise<void> {
  await model.save(fileSystemModelHandler(directory));
}

/** Loads a tfjs Layers model from a local path (folder or model.json, optionally file://) or an http(s) URL. */
export async function loadLayersModelFrom(location: string): Promise<tf.LayersModel> {
  try {
    if (isHttp(location)) return await tf.loadLayersModel(location);
    return await tf.loadLayersModel(fileSystemModelHandler(location));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`pretrained model ${location} could not be loaded: ${errorMessage(err).split('\n')[0]}`);
  }
}
