#pragma once
// Naive float64 reference implementations of the kernels, written plainly (triple loops,
// explicit softmax) and independently of kernels/: the tests of the CPU and the CUDA kernels both
// compare against these. Layouts follow the kernel headers (kernels/cpu/*.hpp).

#include <cmath>
#include <cstdint>
#include <vector>

namespace tandem::kernels::reference {

using Vec = std::vector<double>;

// out (M,N) = inp (M,K) · weight (N,K)ᵀ + bias (N) (bias may be empty).
inline Vec matmul_forward(const Vec& inp, const Vec& weight, const Vec& bias, int M, int K,
                          int N) {
  Vec out(static_cast<std::size_t>(M) * N);
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double sum = bias.empty() ? 0.0 : bias[j];
      for (int k = 0; k < K; ++k) sum += inp[i * K + k] * weight[j * K + k];
      out[i * N + j] = sum;
    }
  }
  return out;
}

// dinp (M,K) = dout (M,N) · weight (N,K).
inline Vec matmul_backward_input(const Vec& dout, const Vec& weight, int M, int K, int N) {
  Vec dinp(static_cast<std::size_t>(M) * K, 0.0);
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < N; ++j) dinp[i * K + k] += dout[i * N + j] * weight[j * K + k];
  return dinp;
}

// dweight (N,K) = doutᵀ · inp; dbias (N) = column sums of dout.
inline void matmul_backward_weight(Vec& dweight, Vec& dbias, const Vec& dout, const Vec& inp,
                                   int M, int K, int N) {
  dweight.assign(static_cast<std::size_t>(N) * K, 0.0);
  dbias.assign(N, 0.0);
  for (int j = 0; j < N; ++j) {
    for (int i = 0; i < M; ++i) {
      dbias[j] += dout[i * N + j];
      for (int k = 0; k < K; ++k) dweight[j * K + k] += dout[i * N + j] * inp[i * K + k];
    }
  }
}

// Causal GQA attention on the fused qkv (B,T,(Hq+2Hkv)·D); out (B,T,Hq·D), logsumexp (B,Hq,T).
inline void attention_forward(Vec& out, Vec& logsumexp, const Vec& qkv, int B, int T, int Hq,
                              int Hkv, int D) {
  const int C3 = (Hq + 2 * Hkv) * D;
  const int group = Hq / Hkv;
  out.assign(static_cast<std::size_t>(B) * T * Hq * D, 0.0);
  logsumexp.assign(static_cast<std::size_t>(B) * Hq * T, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < Hq; ++h) {
      const int kv = h / group;
      for (int i = 0; i < T; ++i) {
        const double* q = &qkv[(b * T + i) * C3 + h * D];
        std::vector<double> score(i + 1);
        double max = -1e300;
        for (int j = 0; j <= i; ++j) {
          const double* k = &qkv[(b * T + j) * C3 + (Hq + kv) * D];
          double dot = 0.0;
          for (int d = 0; d < D; ++d) dot += q[d] * k[d];
          score[j] = dot * scale;
          if (score[j] > max) max = score[j];
        }
        double sum = 0.0;
        for (int j = 0; j <= i; ++j) sum += std::exp(score[j] - max);
        logsumexp[(b * Hq + h) * T + i] = max + std::log(sum);
        double* o = &out[(b * T + i) * Hq * D + h * D];
        for (int j = 0; j <= i; ++j) {
          const double p = std::exp(score[j] - max) / sum;
          const double* v = &qkv[(b * T + j) * C3 + (Hq + Hkv + kv) * D];
          for (int d = 0; d < D; ++d) o[d] += p * v[d];
        }
      }
    }
  }
}

// LayerNorm over rows of C; mean and rstd (M) as the kernel saves them.
inline void layernorm_forward(Vec& out, Vec& mean, Vec& rstd, const Vec& inp, const Vec& weight,
                              const Vec& bias, int M, int C, double eps) {
  out.assign(static_cast<std::size_t>(M) * C, 0.0);
  mean.assign(M, 0.0);
  rstd.assign(M, 0.0);
  for (int i = 0; i < M; ++i) {
    double m = 0.0;
    for (int c = 0; c < C; ++c) m += inp[i * C + c];
    m /= C;
    double var = 0.0;
    for (int c = 0; c < C; ++c) var += (inp[i * C + c] - m) * (inp[i * C + c] - m);
    var /= C;
    const double s = 1.0 / std::sqrt(var + eps);
    for (int c = 0; c < C; ++c) out[i * C + c] = (inp[i * C + c] - m) * s * weight[c] + bias[c];
    mean[i] = m;
    rstd[i] = s;
  }
}

inline void rmsnorm_forward(Vec& out, Vec& rstd, const Vec& inp, const Vec& weight, int M, int C,
                            double eps) {
  out.assign(static_cast<std::size_t>(M) * C, 0.0);
  rstd.assign(M, 0.0);
  for (int i = 0; i < M; ++i) {
    double ms = 0.0;
    for (int c = 0; c < C; ++c) ms += inp[i * C + c] * inp[i * C + c];
    const double s = 1.0 / std::sqrt(ms / C + eps);
    for (int c = 0; c < C; ++c) out[i * C + c] = inp[i * C + c] * s * weight[c];
    rstd[i] = s;
  }
}

inline double gelu(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}

inline Vec gelu_forward(const Vec& inp) {
  Vec out(inp.size());
  for (std::size_t i = 0; i < inp.size(); ++i) out[i] = gelu(inp[i]);
  return out;
}

// inp (M,2F) = [gate | up]; out (M,F) = gate·sigmoid(gate)·up.
inline Vec swiglu_forward(const Vec& inp, int M, int F) {
  Vec out(static_cast<std::size_t>(M) * F);
  for (int i = 0; i < M; ++i) {
    for (int f = 0; f < F; ++f) {
      const double g = inp[i * 2 * F + f];
      const double u = inp[i * 2 * F + F + f];
      out[i * F + f] = g / (1.0 + std::exp(-g)) * u;
    }
  }
  return out;
}

// Rotate-half RoPE on the q and k heads of qkv (B,T,(Hq+2Hkv)·D), returning a rotated copy.
inline Vec rope_forward(const Vec& qkv, int B, int T, int Hq, int Hkv, int D, double theta,
                        int position_offset) {
  Vec out = qkv;
  const int C3 = (Hq + 2 * Hkv) * D;
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      for (int h = 0; h < Hq + Hkv; ++h) {  // q heads, then k heads
        const int base = (b * T + t) * C3 + h * D;
        for (int i = 0; i < D / 2; ++i) {
          const double angle = (position_offset + t) / std::pow(theta, 2.0 * i / D);
          const double x1 = qkv[base + i];
          const double x2 = qkv[base + i + D / 2];
          out[base + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
          out[base + i + D / 2] = x2 * std::cos(angle) + x1 * std::sin(angle);
        }
      }
    }
  }
  return out;
}

// Full (unsharded) embedding: out (B,T,C) = wte[token] + wpe[t] (wpe may be empty).
inline Vec embedding_forward(const std::vector<std::int32_t>& tokens, const Vec& wte,
                             const Vec& wpe, int B, int T, int C) {
  Vec out(static_cast<std::size_t>(B) * T * C);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c)
        out[(b * T + t) * C + c] =
            wte[tokens[b * T + t] * C + c] + (wpe.empty() ? 0.0 : wpe[t * C + c]);
  return out;
}

// Full cross-entropy with padded vocabulary (ids >= valid_vocab ignored) and ignored rows
// (target < 0). Returns per-row losses; dlogits (M,V) = (softmax − onehot)·dloss.
inline Vec cross_entropy_losses(const Vec& logits, const std::vector<std::int32_t>& targets,
                                int M, int V, int valid_vocab) {
  Vec losses(M, 0.0);
  for (int i = 0; i < M; ++i) {
    if (targets[i] < 0) continue;
    double max = -1e300;
    for (int j = 0; j < valid_vocab; ++j) max = std::fmax(max, logits[i * V + j]);
    double sum = 0.0;
    for (int j = 0; j < valid_vocab; ++j) sum += std::exp(logits[i * V + j] - max);
    losses[i] = std::log(sum) + max - logits[i * V + targets[i]];
  }
  return losses;
}

inline Vec cross_entropy_dlogits(const Vec& logits, const std::vector<std::int32_t>& targets,
                                 double dloss, int M, int V, int valid_vocab) {
  Vec d(static_cast<std::size_t>(M) * V, 0.0);
  for (int i = 0; i < M; ++i) {
    if (targets[i] < 0) continue;
    double max = -1e300;
    for (int j = 0; j < valid_vocab; ++j) max = std::fmax(max, logits[i * V + j]);
    double sum = 0.0;
    for (int j = 0; j < valid_vocab; ++j) sum += std::exp(logits[i * V + j] - max);
    for (int j = 0; j < valid_vocab; ++j) {
      const double p = std::exp(logits[i * V + j] - max) / sum;
      d[i * V + j] = (p - (j == targets[i] ? 1.0 : 0.0)) * dloss;
    }
  }
  return d;
}

// AdamW as torch.optim.AdamW documents it, in double; step counts from 1.
inline void adamw_update(Vec& param, const Vec& grad, Vec& m, Vec& v, double lr, double beta1,
                         double beta2, double eps, double weight_decay, int step) {
  for (std::size_t i = 0; i < param.size(); ++i) {
    param[i] *= 1.0 - lr * weight_decay;
    m[i] = beta1 * m[i] + (1.0 - beta1) * grad[i];
    v[i] = beta2 * v[i] + (1.0 - beta2) * grad[i] * grad[i];
    const double m_hat = m[i] / (1.0 - std::pow(beta1, step));
    const double v_hat = v[i] / (1.0 - std::pow(beta2, step));
    param[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

}  // namespace tandem::kernels::reference
