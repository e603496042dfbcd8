import zlib from 'node:zlib';

/** Writers for the binary formats the adapters read, built byte by byte from the format specs. */

function tag(type: number, size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(size, 4);
  return b;
}

function pad8(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((8 - (data.length % 8)) % 8)]);
}

/** A MAT v5 file holding one column vector `name` (doubles or uint8 storage, optionally zlib-compressed). */
export function matFile(name: string, values: number[], options: { compress?: boolean; storage?: 'double' | 'uint8' } = {}): Buffer {
  const header = Buffer.alloc(128, ' ');
  header.write('MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024', 0, 'latin1');
  header.fill(0, 116, 124);
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const flags = Buffer.concat([tag(6, 8), Buffer.from([6, 0, 0, 0, 0, 0, 0, 0])]);
  const dims = Buffer.concat([
    tag(5, 8),
    (() => {
      const d = Buffer.alloc(8);
      d.writeInt32LE(values.length, 0);
      d.writeInt32LE(1, 4);
      return d;
    })(),
  ]);
  const nameBytes = Buffer.from(name, 'latin1');
  const nameElement =
    nameBytes.length <= 4
      ? (() => {
          const b = Buffer.alloc(8);
          b.writeUInt32LE((nameBytes.length << 16) | 1, 0);
          nameBytes.copy(b, 4);
          return b;
        })()
      : Buffer.concat([tag(1, nameBytes.length), pad8(nameBytes)]);
  let real: Buffer;
  if (options.storage === 'uint8') {
    real = Buffer.concat([tag(2, values.length), pad8(Buffer.from(values))]);
  } else {
    const d = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => d.writeDoubleLE(v, i * 8));
    real = Buffer.concat([tag(9, d.length), d]);
  }
  const content = Buffer.concat([flags, dims, nameElement, real]);
  const matrix = Buffer.concat([tag(14, content.length), content]);
  if (!options.compress) return Buffer.concat([header, matrix]);
  const packed = zlib.deflateSync(matrix);
  return Buffer.concat([header, tag(15, packed.length), packed]);
}

/** A version-1 .npy file holding one unicode string scalar (AffectNet's annotations/<n>_exp.npy). */
export function npyString(value: string): Buffer {
  let dict = `{'descr': '<U${value.length}', 'fortran_order': False, 'shape': (), }`;
  const total = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(dict.length, 8);
  const data = Buffer.alloc(4 * value.length);
  [...value].forEach((ch, i) => data.writeUInt32LE(ch.codePointAt(0)!, 4 * i));
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}
