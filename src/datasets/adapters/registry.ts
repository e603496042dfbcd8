import type { AdapterFormat } from '../manifest.js';
import { idxAdapter } from './idx.js';
import { openmojiAdapter } from './openmoji.js';
import type { Adapter } from './types.js';

export const ADAPTERS: Partial<Record<AdapterFormat, Adapter>> = {
  openmoji: openmojiAdapter,
  idx: idxAdapter,
};
