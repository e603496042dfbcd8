#!/bin/sh
# Builds mtl-bench's WebAssembly SIMD kernels (src/engine/simd/kernels.c) into the two modules the
# package ships and loads (src/engine/simd_kernels.ts):
#   mtl_simd_shared.wasm  imports a shared memory (tfjs's threaded build),
#   mtl_simd.wasm         imports a plain memory (tfjs's single-threaded builds).
# Both are committed, so installing the package needs no compiler. Rerunning this script gives
# byte-identical files (checked by `scripts/build-simd.sh --check`, which rebuilds into a temporary
# folder and compares). Needs clang and wasm-ld 14 (Debian: apt-get install clang-14 lld-14).
set -eu
cd "$(dirname "$0")/.."
src=src/engine/simd/kernels.c
out=src/engine/simd
mode=${1:-build}
case "$mode" in
  build) target=$out ;;
  --check) target=$(mktemp -d) ;;
  *) echo "usage: scripts/build-simd.sh [--check]" >&2; exit 2 ;;
esac

version=$(clang --version | head -n 1)
case "$version" in
  *"clang version 14."*) ;;
  *) echo "build-simd.sh: expected clang 14 (the committed modules were built with it), found: $version" >&2; exit 1 ;;
esac

# Pinned flags. No libc, no entry point; memory is imported (min 1 page, max 4 GiB, the most a
# wasm32 memory can have, so any memory of the backend fits); --strip-all drops names and the
# producers section (which would record the compiler's path).
common="--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin -Wall -Wextra -Werror
  -Wl,--no-entry -Wl,--import-memory -Wl,--initial-memory=65536 -Wl,--max-memory=4294967296
  -Wl,--strip-all -Wl,-z,stack-size=0"
# shellcheck disable=SC2086
clang $common -matomics -mbulk-memory -Wl,--shared-memory -o "$target/mtl_simd_shared.wasm" "$src"
# shellcheck disable=SC2086
clang $common -o "$target/mtl_simd.wasm" "$src"

for module in "$target/mtl_simd_shared.wasm" "$target/mtl_simd.wasm"; do
  # The module must own nothing in the backend's memory: no data segment, no use of the shadow
  # stack pointer (the linker places both at fixed addresses the backend uses for its own data).
  if llvm-objdump -h "$module" | grep -q ' DATA '; then
    echo "build-simd.sh: $module has a data segment" >&2
    exit 1
  fi
  if llvm-objdump -d "$module" | grep -q 'global\.[gs]et'; then
    echo "build-simd.sh: $module uses the shadow stack (a global); keep every kernel's values in locals" >&2
    exit 1
  fi
done

if [ "$mode" = --check ]; then
  status=0
  for name in mtl_simd_shared.wasm mtl_simd.wasm; do
    if cmp -s "$target/$name" "$out/$name"; then
      echo "$out/$name: identical to a fresh build"
    else
      echo "$out/$name: differs from a fresh build of $src" >&2
      status=1
    fi
  done
  rm -rf "$target"
  exit $status
fi
sha256sum "$out/mtl_simd_shared.wasm" "$out/mtl_simd.wasm"
