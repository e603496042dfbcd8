import fs from 'node:fs';
import zlib from 'node:zlib';
import { UserError } from '../../util/errors.js';

/**
 * A small reader for MATLAB Level 5 MAT-files: the 128-byte header, then data elements; numeric
 * matrices (miMATRIX) are returned as doubles whatever their storage type (MATLAB stores a double
 * array of small integers as bytes), and zlib-compressed elements (miCOMPRESSED, -v7) are inflated.
 * Other classes (cell, struct, char, sparse) are skipped.
 */

export interface MatVariable {
  name: string;
  dims: number[];
  /** Column-major values, as MATLAB stores them. */
  data: Float64Array;
}

const MI_INT8 = 1;
const MI_INT32 = 5;
const MI_UINT32 = 6;
const MI_MATRIX = 14;
const MI_COMPRESSED = 15;
// mxCLASS ids of the numeric classes: double, single, int8 … uint64.
const NUMERIC_CLASSES = new Set([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

interface Element {
  type: number;
  data: Buffer;
  next: number;
}

function readElement(buf: Buffer, offset: number, little: boolean, file: string): Element {
  if (offset + 8 > buf.length) throw new UserError(`${file}: truncated MAT file (element header at byte ${offset})`);
  const first = little ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
  // Small data element: size in the upper 16 bits, type in the lower, up to 4 bytes of data inline.
  if (first >>> 16 !== 0) {
    const type = first & 0xffff;
    const size = first >>> 16;
    if (size > 4) throw new UserError(`${file}: malformed small data element at byte ${offset}`);
    return { type, data: buf.subarray(offset + 4, offset + 4 + size), next: offset + 8 };
  }
  const type = first;
  const size = little ? buf.readUInt32LE(offset + 4) : buf.readUInt32BE(offset + 4);
  const start = offset + 8;
  if (start + size > buf.length) throw new UserError(`${file}: truncated MAT file (element of ${size} bytes at byte ${offset})`);
  // Compressed elements are not padded; all others are padded to 8 bytes.
  const padded = type === MI_COMPRESSED ? size : Math.ceil(size / 8) * 8;
  return { type, data: buf.subarray(start, start + size), next: Math.min(buf.length, start + padded) };
}

function numbers(element: Element, little: boolean, file: string): Float64Array {
  const { type, data } = element;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sizes: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };
  const size = sizes[type];
  if (!size) throw new UserError(`${file}: unsupported MAT data type ${type} in a numeric array`);
  const count = Math.floor(data.length / size);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * size;
    switch (type) {
      case 1:
        out[i] = view.getInt8(at);
        break;
      case 2:
        out[i] = view.getUint8(at);
        break;
      case 3:
        out[i] = view.getInt16(at, little);
        break;
      case 4:
        out[i] = view.getUint16(at, little);
        break;
      case 5:
        out[i] = view.getInt32(at, little);
        break;
      case 6:
        out[i] = view.getUint32(at, little);
        break;
      case 7:
        out[i] = view.getFloat32(at, little);
        break;
      case 9:
        out[i] = view.getFloat64(at, little);
        break;
      case 12:
        out[i] = Number(view.getBigInt64(at, little));
        break;
      case 13:
        out[i] = Number(view.getBigUint64(at, little));
        break;
    }
  }
  return out;
}

function readMatrix(data: Buffer, little: boolean, file: string): MatVariable | undefined {
  const flags = readElement(data, 0, little, file);
  if (flags.type !== MI_UINT32 || flags.data.length < 8) throw new UserError(`${file}: malformed array flags`);
  const flagWord = little ? flags.data.readUInt32LE(0) : flags.data.readUInt32BE(0);
  const mxClass = flagWord & 0xff;
  const complex = (flagWord & 0x0800) !== 0;
  const dimsElement = readElement(data, flags.next, little, file);
  if (dimsElement.type !== MI_INT32) throw new UserError(`${file}: malformed dimensions`);
  const dims = Array.from(numbers(dimsElement, little, file));
  const nameElement = readElement(data, dimsElement.next, little, file);
  if (nameElement.type !== MI_INT8 && nameElement.type !== 2) throw new UserError(`${file}: malformed array name`);
  const name = nameElement.data.toString('latin1');
  if (!NUMERIC_CLASSES.has(mxClass)) return undefined;
  if (complex) throw new UserError(`${file}: variable "${name}" is complex; a real numeric array is expected`);
  const real = readElement(data, nameElement.next, little, file);
  const values = numbers(real, little, file);
  const expected = dims.reduce((a, b) => a * b, 1);
  if (values.length !== expected)
    throw new UserError(`${file}: variable "${name}" has ${values.length} values for dimensions ${dims.join('×')}`);
  return { name, dims, data: values };
}

function readElements(buf: Buffer, start: number, little: boolean, file: string, out: MatVariable[]): void {
  let offset = start;
  while (offset + 8 <= buf.length) {
    const element = readElement(buf, offset, little, file);
    if (element.type === MI_COMPRESSED) {
      let inflated: Buffer;
      try {
        inflated = zlib.inflateSync(element.data);
      } catch (err) {
        throw new UserError(`${file}: corrupt compressed element at byte ${offset} (${(err as Error).message})`);
      }
      readElements(inflated, 0, little, file, out);
    } else if (element.type === MI_MATRIX) {
      const variable = readMatrix(element.data, little, file);
      if (variable) out.push(variable);
    }
    offset = element.next;
  }
}

function readMat5(file: string): MatVariable[] {
  const buf = fs.readFileSync(file);
  if (buf.length < 128) throw new UserError(`${file}: not a MAT file (shorter than its 128-byte header)`);
  const text = buf.toString('latin1', 0, 116);
  if (/^MATLAB 7\.3/.test(text)) throw new UserError(`${file}: MAT v7.3 (HDF5) files are not supported; save them with -v7 or -v6`);
  if (!text.startsWith('MATLAB 5.0 MAT-file')) throw new UserError(`${file}: not a MAT v5 file (header "${text.slice(0, 20)}")`);
  const endian = buf.toString('latin1', 126, 128);
  if (endian !== 'IM' && endian !== 'MI') throw new UserError(`${file}: unreadable MAT endian indicator "${endian}"`);
  const out: MatVariable[] = [];
  readElements(buf, 128, endian === 'IM', file, out);
  return out;
}

/** The variable `name`, else the file's only numeric variable. */
export function matVariable(file: string, name: string): MatVariable {
  const variables = readMat5(file);
  const found = variables.find((v) => v.name === name) ?? (variables.length === 1 ? variables[0] : undefined);
  if (!found) throw new UserError(`${file}: no numeric variable "${name}" (found: ${variables.map((v) => v.name).join(', ') || 'none'})`);
  return found;
}
