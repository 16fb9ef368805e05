#pragma once
// LayerNorm and RMSNorm over the last dimension, eps as a parameter (GPT-2 / Llama: 1e-5).
// Rows are M = B·T tokens of C channels, row-major. Instantiated for float and double.

namespace tandem::kernels::cpu {

// out, inp are (M,C); weight, bias are (C); mean, rstd are (M) and saved for backward.
// out = (inp − mean) · rstd · weight + bias, rstd = 1 / sqrt(var + eps) (biased variance).
template <typename Scalar>
void layernorm_forward(Scalar* out, Scalar* mean, Scalar* rstd, const Scalar* inp,
                       const Scalar* weight, const Scalar* bias, int M, int C,
                       Scalar eps = Scalar(1e-5));

// dinp (M,C) is written (or accumulated when accumulate is true, e.g. into the residual
// stream's gradient); dweight, dbias (C) are ACCUMULATED (dbias skipped when nullptr).
template <typename Scalar>
void layernorm_backward(Scalar* dinp, Scalar* dweight, Scalar* dbias, const Scalar* dout,
                        const Scalar* inp, const Scalar* weight, const Scalar* mean,
                        const Scalar* rstd, int M, int C, bool accumulate = false);

// out, inp are (M,C); weight is (C); rstd is (M) and saved for backward.
// out = inp · rstd · weight, rstd = 1 / sqrt(mean(inp²) + eps).
template <typename Scalar>
void rmsnorm_forward(Scalar* out, Scalar* rstd, const Scalar* inp, const Scalar* weight, int M,
                     int C, Scalar eps = Scalar(1e-5));

// dinp (M,C) written (or accumulated); dweight (C) ACCUMULATED.
template <typename Scalar>
void rmsnorm_backward(Scalar* dinp, Scalar* dweight, const Scalar* dout, const Scalar* inp,
                      const Scalar* weight, const Scalar* rstd, int M, int C,
                      bool accumulate = false);

}  // namespace tandem::kernels::cpu
