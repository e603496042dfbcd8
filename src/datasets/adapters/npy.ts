import fs from 'node:fs';
import { UserError } from '../../util/errors.js';

/**
 * Reads the single value of a small NumPy .npy file (AffectNet's second layout stores each label
 * as one: a string such as '3', or a number). Versions 1–3 of the format; any scalar or
 * one-element array of unicode, bytes, integer or float type.
 */
export function readNpyScalar(file: string): string | number {
  const bytes = fs.readFileSync(file);
  if (bytes.length < 10 || bytes.toString('latin1', 0, 6) !== '\x93NUMPY') throw new UserError(`${file}: not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = bytes.toString(major === 3 ? 'utf8' : 'latin1', headerStart, headerStart + headerLength);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shape === undefined) throw new UserError(`${file}: unreadable .npy header`);
  const count = shape
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .reduce((n, d) => n * Number(d), 1);
  if (count !== 1) throw new UserError(`${file}: expected a single value, found shape (${shape})`);
  const data = bytes.subarray(headerStart + headerLength);
  const order = descr[0];
  const kind = descr[1];
  const size = Number(descr.slice(2));
  const little = order !== '>';
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const need = kind === 'U' ? 4 * size : size;
  if (data.length < need) throw new UserError(`${file}: truncated data (${data.length} of ${need} bytes)`);
  switch (kind) {
    case 'U': {
      let text = '';
      for (let i = 0; i < size; i++) {
        const code = view.getUint32(4 * i, little);
        if (code === 0) break;
        text += String.fromCodePoint(code);
      }
      return text;
    }
    case 'S':
      return data.toString('latin1', 0, size).replace(/\0+$/, '');
    case 'i':
      if (size === 1) return view.getInt8(0);
      if (size === 2) return view.getInt16(0, little);
      if (size === 4) return view.getInt32(0, little);
      if (size === 8) return Number(view.getBigInt64(0, little));
      break;
    case 'u':
      if (size === 1) return view.getUint8(0);
      if (size === 2) return view.getUint16(0, little);
      if (size === 4) return view.getUint32(0, little);
      if (size === 8) return Number(view.getBigUint64(0, little));
      break;
    case 'f':
      if (size === 4) return view.getFloat32(0, little);
      if (size === 8) return view.getFloat64(0, little);
      break;
  }
  throw new UserError(`${file}: unsupported .npy type "${descr}"`);
}
