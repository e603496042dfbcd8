/*
 * mtl-bench's own WebAssembly SIMD kernels (written for this project; nothing copied).
 *
 * They run on the tfjs wasm backend's heap: the module imports that instance's memory, so
 * pointers are the byte offsets of tensors the backend already holds and nothing is copied.
 * Every function works on a part of its output ([begin, end) of some unit), so the main thread
 * and helper threads (src/engine/heap_workers.ts) can each take a disjoint part of one call.
 *
 * The module owns no memory of its own: no data, no globals, and no shadow stack (everything
 * lives in wasm locals). scripts/build-simd.sh checks that, since a stack or data segment would
 * be placed at an address of the imported memory that the backend uses for its own data.
 *
 * Tensors are float32 and channels-last (NHWC), as tfjs lays them out.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------------------------------
 * Filter gradient of a 2-D convolution:
 *   dw[ky,kx,ci,co] = sum over n, oy, ox of x[n, oy*sh + ky - pt, ox*sw + kx - pl, ci] * dy[n, oy, ox, co]
 * (positions outside x contribute zero). dw is [FH, FW, Cin, Cout], tfjs's filter layout.
 *
 * The work is cut into tiles of dw: one tap (ky, kx), up to 4 input channels and up to 8 output
 * channels (Cout must be a multiple of 4), accumulated in 8 SIMD registers while the loop walks
 * the positions: per position, 4 broadcast x values times 2 vectors of dy. Positions are visited
 * in bands of output rows of one image, and every tile of the caller's range is updated per band,
 * so the band's dy rows and x rows stay in cache while all tiles reuse them.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  int n, h, w, cin, oh, ow, cout, fh, fw, sh, sw, pt, pl;
} conv_dims;

INLINE void filter_tile(const int NCI, const int NCOV, const float *x_image, const float *dy_image, float *dw_tile,
                        const conv_dims *d, int oy_begin, int oy_end, int ky, int kx, int ox_begin, int ox_end) {
  v128_t acc[4][2];
  for (int i = 0; i < NCI; i++)
    for (int j = 0; j < NCOV; j++) acc[i][j] = wasm_v128_load(dw_tile + i * d->cout + 4 * j);
  const int x_step = d->sw * d->cin;
  for (int oy = oy_begin; oy < oy_end; oy++) {
    const int iy = oy * d->sh + ky - d->pt;
    if (iy < 0 || iy >= d->h) continue;
    const float *xp = x_image + (iy * d->w + ox_begin * d->sw + kx - d->pl) * d->cin;
    const float *dp = dy_image + (oy * d->ow + ox_begin) * d->cout;
    for (int ox = ox_begin; ox < ox_end; ox++, xp += x_step, dp += d->cout) {
      v128_t g[2];
      for (int j = 0; j < NCOV; j++) g[j] = wasm_v128_load(dp + 4 * j);
      for (int i = 0; i < NCI; i++) {
        const v128_t v = wasm_v128_load32_splat(xp + i);
        for (int j = 0; j < NCOV; j++) acc[i][j] = wasm_f32x4_add(acc[i][j], wasm_f32x4_mul(v, g[j]));
      }
    }
  }
  for (int i = 0; i < NCI; i++)
    for (int j = 0; j < NCOV; j++) wasm_v128_store(dw_tile + i * d->cout + 4 * j, acc[i][j]);
}

/* Tiles of the filter gradient for these dimensions; a caller splits [0, tiles) between threads. */
EXPORT(filter_grad_tiles)
int filter_grad_tiles(int cin, int cout, int fh, int fw) { return fh * fw * ((cin + 3) / 4) * ((cout + 7) / 8); }

EXPORT(filter_grad)
void filter_grad(const float *x, const float *dy, float *dw, int n, int h, int w, int cin, int oh, int ow, int cout, int fh,
                 int fw, int sh, int sw, int pt, int pl, int tile_begin, int tile_end) {
  const conv_dims d = {n, h, w, cin, oh, ow, cout, fh, fw, sh, sw, pt, pl};
  const int ci_blocks = (cin + 3) / 4;
  const int co_blocks = (cout + 7) / 8;
  for (int t = tile_begin; t < tile_end; t++) {
    const int tap = t / (ci_blocks * co_blocks);
    const int ci0 = (t / co_blocks % ci_blocks) * 4;
    const int co0 = (t % co_blocks) * 8;
    const int nci = cin - ci0 < 4 ? cin - ci0 : 4;
    const int nco = cout - co0 < 8 ? cout - co0 : 8;
    for (int i = 0; i < nci; i++)
      for (int j = 0; j < nco; j++) dw[(tap * cin + ci0 + i) * cout + co0 + j] = 0.0f;
  }
  /* Bands of at least 64 positions, so a tile's register loads and stores are amortised. */
  const int band = ow >= 64 ? 1 : (64 + ow - 1) / ow;
  for (int b = 0; b < n; b++) {
    const float *x_image = x + b * h * w * cin;
    const float *dy_image = dy + b * oh * ow * cout;
    for (int oy0 = 0; oy0 < oh; oy0 += band) {
      const int oy1 = oy0 + band < oh ? oy0 + band : oh;
      for (int t = tile_begin; t < tile_end; t++) {
        const int tap = t / (ci_blocks * co_blocks);
        const int ky = tap / fw;
        const int kx = tap % fw;
        const int ci0 = (t / co_blocks % ci_blocks) * 4;
        const int co0 = (t % co_blocks) * 8;
        /* Output columns whose input column ox*sw + kx - pl lies inside x. */
        const int lead = d.pl - kx;
        const int ox_begin = lead > 0 ? (lead + sw - 1) / sw : 0;
        const int last = w - 1 + lead;
        int ox_end = last < 0 ? 0 : last / sw + 1;
        if (ox_end > ow) ox_end = ow;
        if (ox_begin >= ox_end) continue;
        float *tile = dw + (tap * cin + ci0) * cout + co0;
        const float *xi = x_image + ci0;
        const float *di = dy_image + co0;
        const int nci = cin - ci0 < 4 ? cin - ci0 : 4;
        const int ncov = cout - co0 < 8 ? 1 : 2;
        switch (nci * 2 + ncov - 1) {
          case 2: filter_tile(1, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 3: filter_tile(1, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 4: filter_tile(2, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 5: filter_tile(2, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 6: filter_tile(3, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 7: filter_tile(3, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 8: filter_tile(4, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          default: filter_tile(4, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
        }
      }
    }
  }
}
