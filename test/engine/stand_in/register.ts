/**
 * `node --import .../register.js bin/mtl-bench.js …` runs the CLI with the stand-in GPU package
 * in place of @tensorflow/tfjs-node-gpu, installed or not.
 */
import { register } from 'node:module';

register('./resolve_hooks.js', import.meta.url);
