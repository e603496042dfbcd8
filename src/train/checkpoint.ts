import { createHash } from 'node:crypto';
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
 * the best epoch so far. Layout: "MTLBCKP2", header length (uint32 LE), header JSON, zero padding
 * to a multiple of 4, the float32 arrays the header lists (little-endian), and last the sha256 of
 * all the bytes before it, checked before anything is read: a file damaged on disk, even without
 * changing its size, is refused instead of resuming with wrong weights. Files of format 1 (no
 * checksum, magic "MTLBCKP1") are still read.
 */
const MAGIC = 'MTLBCKP2';
const FORMAT_VERSION = 2;
const MAGIC_V1 = 'MTLBCKP1';
const CHECKSUM_BYTES = 32;

export interface BestSoFar {
  epoch: number;
  /** Mean primary validation metric; null when no epoch had a finite one. */
  value: number | null;
  val: Record<string, Record<string, number>>;
}

/**
 * Where an interrupted epoch stood: the next step to run, the epoch's sample order and loss sums so
 * far. With it, a resume continues inside the epoch and ends exactly like an uninterrupted run.
 */
export interface PartialEpoch {
  /** 0-based index of the interrupted epoch (always equal to epochsDone). */
  epoch: number;
  /** Steps of it already applied; the next run starts at this step index. */
  step: number;
  order: Int32Array;
  /** Each loss term summed over the steps done (float64, as the trainer sums them). */
  sums: Float64Array;
  trainMs: number;
  seconds: number;
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
  /** Absent when the best epoch is the last one (its weights are `weights`), or when no epoch ended yet. */
  bestWeights: WeightSnapshot[] | null;
  /** Present when the file was written in the middle of an epoch (on an interrupt). */
  partial?: PartialEpoch;
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

interface StoredPartial extends Omit<PartialEpoch, 'order' | 'sums'> {
  /** Int32 little-endian, base64. */
  order: string;
  sums: number[];
}

interface Header extends Omit<CheckpointState, 'weights' | 'bestWeights' | 'optimizer' | 'partial'> {
  format: number;
  optimizerStep: number;
  tensors: TensorEntry[];
  partial?: StoredPartial;
}

function storePartial(partial: PartialEpoch): StoredPartial {
  const order = Buffer.alloc(partial.order.length * 4);
  partial.order.forEach((v, i) => order.writeInt32LE(v, i * 4));
  return { ...partial, order: order.toString('base64'), sums: Array.from(partial.sums) };
}

function loadPartial(stored: StoredPartial): PartialEpoch {
  const bytes = Buffer.from(stored.order, 'base64');
  const order = new Int32Array(bytes.length / 4);
  for (let i = 0; i < order.length; i++) order[i] = bytes.readInt32LE(i * 4);
  return { ...stored, order, sums: Float64Array.from(stored.sums) };
}

// JSON has no NaN: metrics that are undefined (NaN) travel as null and come back as NaN.
function encodeNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? { nonFinite: String(value) } : value;
}

function decodeNumbers(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && 'nonFinite' in value && Object.keys(value).length === 1)
    return Number((value as { nonFinite: string }).nonFinite);
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
  const { weights: _w, bestWeights: _b, optimizer, partial, ...rest } = state;
  const header: Header = {
    format: FORMAT_VERSION,
    ...rest,
    optimizerStep: optimizer.step,
    tensors,
    ...(partial ? { partial: storePartial(partial) } : {}),
  };
  const headerBytes = Buffer.from(JSON.stringify(header, encodeNumbers), 'utf8');
  const prefix = MAGIC.length + 4 + headerBytes.length;
  const padding = (4 - (prefix % 4)) % 4;
  const out = new Uint8Array(prefix + padding + offset * 4 + CHECKSUM_BYTES);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.length, true);
  out.set(headerBytes, MAGIC.length + 4);
  const body = new Float32Array(out.buffer, prefix + padding, offset);
  for (let i = 0, at = 0; i < arrays.length; i++) {
    body.set(arrays[i]!, at);
    at += arrays[i]!.length;
  }
  const contentEnd = out.length - CHECKSUM_BYTES;
  out.set(createHash('sha256').update(out.subarray(0, contentEnd)).digest(), contentEnd);
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array, origin: string): CheckpointState {
  const fail = (why: string): never => {
    throw new UserError(`checkpoint ${origin} is unreadable (${why}); delete it to start the cell over`);
  };
  const magic = bytes.length >= MAGIC.length + 4 ? Buffer.from(bytes.subarray(0, MAGIC.length)).toString('latin1') : '';
  if (magic !== MAGIC && magic !== MAGIC_V1) fail('not an mtl-bench checkpoint');
  let contentEnd = bytes.length;
  if (magic === MAGIC) {
    contentEnd -= CHECKSUM_BYTES;
    const stored = contentEnd > MAGIC.length + 4 ? Buffer.from(bytes.subarray(contentEnd)) : undefined;
    if (!stored || !createHash('sha256').update(bytes.subarray(0, contentEnd)).digest().equals(stored)) {
      throw new UserError(
        `checkpoint ${origin} is damaged (its checksum does not match its content); delete it to train this cell again from the start`,
      );
    }
  }
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
  const expectedFormat = magic === MAGIC ? FORMAT_VERSION : 1;
  if (header.format !== expectedFormat) fail(`format ${header.format}, this version reads ${FORMAT_VERSION} and 1`);
  const start = prefix + ((4 - (prefix % 4)) % 4);
  const floats = (contentEnd - start) / 4;
  // The tensors fill the body exactly: anything else is a damaged (or mislabelled) file.
  const listed = header.tensors.reduce((n, t) => n + t.length, 0);
  if (floats !== listed) fail(floats < listed ? 'truncated data' : 'unexpected bytes after the data');
  const body = new Float32Array(floats);
  new Uint8Array(body.buffer).set(bytes.subarray(start, contentEnd));
  const weights: WeightSnapshot[] = [];
  const best: WeightSnapshot[] = [];
  const slots: Float32Array[] = [];
  for (const entry of header.tensors) {
    if (entry.offset + entry.length > floats) fail('truncated data');
    const data = body.slice(entry.offset, entry.offset + entry.length);
    if (entry.group === 'slots') slots.push(data);
    else (entry.group === 'weights' ? weights : best).push({ name: entry.name, shape: entry.shape, data });
  }
  const { format: _f, optimizerStep, tensors: _t, partial, ...rest } = header;
  return {
    ...rest,
    weights,
    bestWeights: best.length > 0 ? best : null,
    optimizer: { step: optimizerStep, slots },
    ...(partial ? { partial: loadPartial(partial) } : {}),
  };
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
