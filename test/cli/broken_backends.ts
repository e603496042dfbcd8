/**
 * Loaded with `node --import` before the CLI: makes @tensorflow/tfjs-node-gpu and
 * @tensorflow/tfjs-node present but broken (see broken_backends_hooks.ts), whatever this machine
 * has installed, without touching node_modules.
 */
import { register } from 'node:module';

register('./broken_backends_hooks.js', import.meta.url);
