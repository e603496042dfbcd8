import sharp from 'sharp';
import type { Sharp } from 'sharp';
import type { Box } from './index_file.js';

export type Fit = 'fill' | 'cover' | 'contain';

export interface RenderSettings {
  size: number;
  channels: 1 | 3;
  fit: Fit;
  background: string;
}

export type ImageInput = { file: string } | { raw: Uint8Array; width: number; height: number; channels: 1 | 3 | 4 };

/** Clamps a box to the image; undefined when nothing of it is inside (the image is used whole). */
function clampBox(box: Box, width: number, height: number): { left: number; top: number; width: number; height: number } | undefined {
  const left = Math.max(0, Math.floor(box[0]));
  const top = Math.max(0, Math.floor(box[1]));
  const right = Math.min(width, Math.ceil(box[0] + box[2]));
  const bottom = Math.min(height, Math.ceil(box[1] + box[3]));
  if (right - left < 1 || bottom - top < 1) return undefined;
  return { left, top, width: right - left, height: bottom - top };
}

/**
 * Decodes one image to size × size × channels uint8 (HWC): crop to the box if any, resize, lay
 * transparent parts on the background, convert to RGB or grey. Throws when the input does not decode.
 */
export async function renderImage(input: ImageInput, settings: RenderSettings, box?: Box | null): Promise<Buffer> {
  let image: Sharp;
  if ('file' in input) {
    // SVGs are rasterised at their nominal size × density/72: render at about twice the target
    // size so that the downscale antialiases instead of upsampling a small raster.
    const svg = input.file.toLowerCase().endsWith('.svg');
    image = sharp(input.file, svg ? { density: Math.max(72, 2 * settings.size), failOn: 'error' } : { failOn: 'error' });
  } else {
    image = sharp(input.raw, { raw: { width: input.width, height: input.height, channels: input.channels } });
  }
  if (box) {
    const meta = await image.metadata();
    const region = meta.width && meta.height ? clampBox(box, meta.width, meta.height) : undefined;
    if (region) image = image.extract(region);
  }
  image = image
    .resize(settings.size, settings.size, { fit: settings.fit, background: settings.background, kernel: 'lanczos3' })
    .flatten({ background: settings.background });
  image = settings.channels === 1 ? image.grayscale() : image.toColourspace('srgb');
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const expected = settings.size * settings.size * settings.channels;
  if (info.channels !== settings.channels || data.length !== expected) {
    throw new Error(
      `decoded to ${info.width}×${info.height}×${info.channels}, expected ${settings.size}×${settings.size}×${settings.channels}`,
    );
  }
  return data;
}
