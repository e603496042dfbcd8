import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mtl-bench-${prefix}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function write(file: string, content: string | Uint8Array): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/** A small solid-colour JPEG (or PNG) with a brighter square, so crops and resizes are visible. */
export async function writeImage(
  file: string,
  options: { width?: number; height?: number; rgb?: [number, number, number]; format?: 'jpeg' | 'png' } = {},
): Promise<string> {
  const width = options.width ?? 24;
  const height = options.height ?? 20;
  const [r, g, b] = options.rgb ?? [200, 40, 40];
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const inner = x >= width / 4 && x < (3 * width) / 4 && y >= height / 4 && y < (3 * height) / 4;
      pixels[o] = inner ? 255 : r;
      pixels[o + 1] = inner ? 255 : g;
      pixels[o + 2] = inner ? 255 : b;
    }
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  await (options.format === 'png' ? image.png() : image.jpeg({ quality: 95 })).toFile(file);
  return file;
}

/** A manifest file with the given dataset entries (YAML is a superset of JSON). */
export function writeManifest(dir: string, datasets: unknown[], priors: Record<string, unknown> = {}): string {
  return write(
    path.join(dir, `manifest-${Math.random().toString(36).slice(2)}.yaml`),
    JSON.stringify({ version: 1, priors, datasets }, null, 2),
  );
}
