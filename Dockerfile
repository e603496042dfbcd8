# mtl-bench for CPU machines and clusters without GPUs: Node 20, the package installed with npm ci,
# training on the WebAssembly backend. Build: docker build -t mtl-bench .
# The development machines cannot pull base images, so this file is checked by lint only
# (npm run lint: dockerfilelint; test/deploy.test.ts: pinned versions and entrypoint).
FROM node:20.20.2-bookworm-slim

WORKDIR /opt/mtl-bench

# Dependencies first, so that editing the sources does not reinstall them. Install scripts are
# skipped: the only one that matters, @tensorflow/tfjs-node-gpu's, downloads a GPU libtensorflow
# this image has no use for (Dockerfile.gpu runs it).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

COPY . .

# Build, drop the compiler and the GPU package (so that start-up does not try it), put
# `mtl-bench` on the PATH, and make the cache and runs folders the unprivileged user's.
RUN npx tsc -p tsconfig.json \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf node_modules/@tensorflow/tfjs-node-gpu \
  && ln -s /opt/mtl-bench/bin/mtl-bench.js /usr/local/bin/mtl-bench \
  && mkdir -p /var/cache/mtl-bench /opt/mtl-bench/runs \
  && chown node:node /var/cache/mtl-bench /opt/mtl-bench/runs

ENV MTL_BENCH_HOME=/var/cache/mtl-bench \
    MTL_BENCH_BACKEND=wasm

USER node
ENTRYPOINT ["mtl-bench"]
CMD ["--help"]
