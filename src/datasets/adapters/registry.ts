import type { AdapterFormat } from '../manifest.js';
import { affectnetAdapter } from './affectnet.js';
import { bp4dAdapter } from './bp4d.js';
import { cadAdapter } from './cad.js';
import { celebaAdapter } from './celeba.js';
import { csvAdapter } from './csv.js';
import { cubAdapter } from './cub.js';
import { disfaAdapter } from './disfa.js';
import { emotionetAdapter } from './emotionet.js';
import { idxAdapter } from './idx.js';
import { openmojiAdapter } from './openmoji.js';
import { rafdbAdapter } from './rafdb.js';
import type { Adapter } from './types.js';

export const ADAPTERS: Record<AdapterFormat, Adapter> = {
  openmoji: openmojiAdapter,
  cub: cubAdapter,
  affectnet: affectnetAdapter,
  csv: csvAdapter,
  cad: cadAdapter,
  celeba: celebaAdapter,
  rafdb: rafdbAdapter,
  disfa: disfaAdapter,
  bp4d: bp4dAdapter,
  emotionet: emotionetAdapter,
  idx: idxAdapter,
};
