import fs from 'node:fs';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import type { WeightSnapshot } from '../model/network.js';
import type { BalancerState } from './balancing/balancers.js';
import type { OptimizerState } from './optimizer.js';
import type { RngState } from './random.js';
import type { EpochRecord } from './types.js';

/**
 * One training unit's whole state after an epoch, in ONE file so that replacing it (temp file,
 * then rename) is atomic: weights, optimizer slots, generator state, history, and the weights of
 * the best epoch so far. Layout: "MTLBCKP1", header length (uint32 LE), header JSON, zero padding
 * to a multiple of 4, then the float32 arrays the header lists, little-endian.
 */
const MAGIC = 'MTLBCKP1';
const FORMAT_VERSION = 1;

export interface BestSoFar {
  epoch: number;
  /** Mean primary validation metric; null when no epoch had a finite one. */
  value: number | null;
  val: Record<string, Record<string, number>>;
}

export interface CheckpointState {
  /** Hash of everything that determines the run (config, unit, data); a mismatch means the file belongs to another run. */
  fingerprint: string;
  unit: string;
  epochsDone: number;
  globalStep: number;
  rng: RngState;
  history: EpochRecord[];
  best: BestSoFar | null;
  weights: WeightSnapshot[];
  optimizer: OptimizerState;
  /** Absent when the best epoch is the last one (its weights are `weights`). */
  bestWeights: WeightSnapshot[] | null;
  /** The balancing method's own state (loss history, learned weights), for settings that have one. */
  balancing?: BalancerState;
}

interface TensorEntry {
  group: 'weights' | 'best' | 'slots';
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

interface Header extends Omit<CheckpointState, 'weights' | 'bestWeights' | 'optimizer'> {
  format: number;
  optimizerStep: number;
  tensors: TensorEntry[];
}

// JSON has no NaN: metrics that are undefined (NaN) travel as null and come back as NaN.
function encodeNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? { nonFinite: String(value) } : value;
}

function decodeNumbers(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && 'nonFinite' in value && Object.keys(value).length === 1) return Number((value as { nonFinite: string }).nonFinite);
  return value;
}

export function encodeCheckpoint(state: CheckpointState): Uint8Array {
  const tensors: TensorEntry[] = [];
  const arrays: Float32Array[] = [];
  let offset = 0;
  const add = (group: TensorEntry['group'], name: string, shape: number[], data: Float32Array) => {
    tensors.push({ group, name, shape, offset, length: data.length });
    arrays.push(data);
    offset += data.length;
  };
  for (const w of state.weights) add('weights', w.name, w.shape, w.data);
  for (const w of state.bestWeights ?? []) add('best', w.name, w.shape, w.data);
  state.optimizer.slots.forEach((data, i) => add('slots', `slot${i}`, [data.length], data));
  const { weights: _w, bestWeights: _b, optimizer, ...rest } = state;
  const header: Header = { format: FORMAT_VERSION, ...rest, optimizerStep: optimizer.step, tensors };
  const headerBytes = Buffer.from(JSON.stringify(header, encodeNumbers), 'utf8');
  const prefix = MAGIC.length + 4 + headerBytes.length;
  const padding = (4 - (prefix % 4)) % 4;
  const out = new Uint8Array(prefix + padding + offset * 4);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.length, true);
  out.set(headerBytes, MAGIC.length + 4);
  const body = new Float32Array(out.buffer, prefix + padding, offset);
  for (let i = 0, at = 0; i < arrays.length; i++) {
    body.set(arrays[i]!, at);
    at += arrays[i]!.length;
  }
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array, origin: string): CheckpointState {
  const fail = (why: string): never => {
    throw new UserError(`checkpoint ${origin} is unreadable (${why}); delete it to start the cell over`);
  };
  if (bytes.length < MAGIC.length + 4 || Buffer.from(bytes.subarray(0, MAGIC.length)).toString('latin1') !== MAGIC) fail('not an mtl-bench checkpoint');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  const prefix = MAGIC.length + 4 + headerLength;
  if (prefix > bytes.length) fail('truncated header');
  let header: Header;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(MAGIC.length + 4, prefix)).toString('utf8'), decodeNumbers) as Header;
  } catch {
    return fail('corrupt header');
  }
  if (header.format !== FORMAT_VERSION) fail(`format ${header.format}, this version reads ${FORMAT_VERSION}`);
  const start = prefix + ((4 - (prefix % 4)) % 4);
  const floats = (bytes.length - start) / 4;
  const body = new Float32Array(floats);
  new Uint8Array(body.buffer).set(bytes.subarray(start));
  const weights: WeightSnapshot[] = [];
  const best: WeightSnapshot[] = [];
  const slots: Float32Array[] = [];
  for (const entry of header.tensors) {
    if (entry.offset + entry.length > floats) fail('truncated data');
    const data = body.slice(entry.offset, entry.offset + entry.length);
    if (entry.group === 'slots') slots.push(data);
    else (entry.group === 'weights' ? weights : best).push({ name: entry.name, shape: entry.shape, data });
  }
  const { format: _f, optimizerStep, tensors: _t, ...rest } = header;
  return { ...rest, weights, bestWeights: best.length > 0 ? best : null, optimizer: { step: optimizerStep, slots } };
}

export async function writeCheckpoint(file: string, state: CheckpointState): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(state));
}

/** The checkpoint at `file`, or undefined when there is none. */
export async function readCheckpoint(file: string): Promise<CheckpointState | undefined> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return decodeCheckpoint(bytes, file);
}
