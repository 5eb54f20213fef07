/* Winograd F(2x2, 3x3) transforms, reference (kernels.h; Lavin and Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016):
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * A 2x2 block of outputs is A^T [(G g G^T) .* (B^T d B)] A for the 4x4
 * input patch d and the 3x3 kernel g: 16 products where the direct sum
 * takes 36. Summed over input channels, the 16 element-wise products
 * become 16 matrix products (ops/conv_direct.c). */
#include "kernels/ref.h"

/* The input patch of tile t, channel ci: rows 2 ty .. 2 ty + 3 and columns
 * 2 tx .. 2 tx + 3 of xp, zero past its edge. */
static float patch(const float *xp, int32_t hp, int32_t wp, int32_t c, int32_t r, int32_t q, int32_t ci)
{
    return r < hp && q < wp ? xp[((size_t)r * wp + q) * c + ci] : 0.0f;
}

void rg_ref_wino_input(const float *xp, int32_t hp, int32_t wp, int32_t c, int32_t tiles_w, int32_t t0, int32_t nt,
                       float *v)
{
    for (int32_t t = 0; t < nt; t++) {
        int32_t r0 = 2 * ((t0 + t) / tiles_w), q0 = 2 * ((t0 + t) % tiles_w);
        for (int32_t ci = 0; ci < c; ci++) {
            float d[4][4], u[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) d[i][j] = patch(xp, hp, wp, c, r0 + i, q0 + j, ci);
            for (int j = 0; j < 4; j++) { /* B^T d */
                u[0][j] = d[0][j] - d[2][j];
                u[1][j] = d[1][j] + d[2][j];
                u[2][j] = d[2][j] - d[1][j];
                u[3][j] = d[1][j] - d[3][j];
            }
            for (int i = 0; i < 4; i++) { /* (B^T d) B */
                float *o = v + ((size_t)i * 4 * nt + t) * c + ci;
                size_t step = (size_t)nt * c;
                o[0] = u[i][0] - u[i][2];
                o[step] = u[i][1] + u[i][2];
                o[2 * step] = u[i][2] - u[i][1];
                o[3 * step] = u[i][1] - u[i][3];
            }
        }
    }
}

void rg_ref_wino_output(const float *m, int32_t tiles_w, int32_t t0, int32_t nt, int32_t ho, int32_t wo, int32_t c,
                        int accumulate, const float *bias, rg_act act, float *y)
{
    size_t step = (size_t)nt * c;
    for (int32_t t = 0; t < nt; t++) {
        int32_t r0 = 2 * ((t0 + t) / tiles_w), q0 = 2 * ((t0 + t) % tiles_w);
        for (int32_t co = 0; co < c; co++) {
            const float *p = m + (size_t)t * c + co;
            float s[2][4];
            for (int j = 0; j < 4; j++) { /* A^T m */
                float m0 = p[j * step], m1 = p[(4 + j) * step], m2 = p[(8 + j) * step], m3 = p[(12 + j) * step];
                s[0][j] = m0 + m1 + m2;
                s[1][j] = m1 - m2 - m3;
            }
            for (int i = 0; i < 2; i++) { /* (A^T m) A */
                float out[2] = {s[i][0] + s[i][1] + s[i][2], s[i][1] - s[i][2] - s[i][3]};
                for (int j = 0; j < 2; j++) {
                    if (r0 + i >= ho || q0 + j >= wo) continue;
                    float *dst = y + ((size_t)(r0 + i) * wo + q0 + j) * c + co;
                    if (accumulate) *dst += out[j];
                    else *dst = rg_act_value(act, out[j] + (bias ? bias[co] : 0.0f));
                }
            }
        }
    }
}
