#pragma once
// What a compute op costs on one rank, from the hardware profile (strategy/hardware_profile.hpp).
// Every term is a mechanism with a documented source, not a fitted per-shape constant:
//
//   GEMM (m x k)·(k x n), `batch` times: roofline of
//       FLOPs / (peak · efficiency(m, n, k, batch))   and   bytes / (memory bandwidth · memory efficiency)
//     plus the profile's per-kernel overhead. The efficiency is the GEMM model of the profile:
//     the kernel tiles the m x n output (best of the profile's tile shapes, each with its relative
//     efficiency), the tiles run in waves over the compute units (wave quantization: a partly
//     filled last wave idles units), edge tiles are padded (tile quantization), and the k loop
//     has a fixed prologue/epilogue (efficiency k / (k + k_half)); times peak_efficiency, the
//     fraction a large well-shaped GEMM reaches (NVIDIA's "Matrix Multiplication Background" user
//     guide describes tile and wave quantization).
//   Attention core: fused kernels (flash attention) run their FLOPs at attention_efficiency of
//     peak, bounded by their input/output bytes. The cpu backend's kernel computes causal
//     scores block by block (strategy/cpu_threading.hpp: the FLOPs it skips, the threads its
//     loop rule gives it) and pays compute.attention_block_overhead per block. Unfused kernels (Megatron-LM 2021-22: baddbmm
//     Q·Kᵀ, fused scale-mask-softmax, dropout, bmm with V) are the batched GEMMs through the GEMM
//     model plus the softmax/dropout kernels streaming the s x s score matrix through memory:
//     forward reads+writes it in softmax (2 elements) and, with dropout, reads it, writes it and
//     its 1-byte mask; backward the mirror image (dropout: gradient in/out + mask; softmax:
//     probabilities, gradient in, gradient out).
//   Norms, element-wise ops, embedding, loss: memory-bound at the achieved memory bandwidth
//     (roofline against peak for the rare compute-heavy one).
//   Optimizer step: its state traffic at memory bandwidth (roofline against its FLOPs).
//   Precision picks the peak (fp32 = TF32 tensor cores on NVIDIA GPUs, bf16, fp8).
//   Non-GEMM arithmetic (element-wise, norms, loss, optimizer, embedding) runs at the fp32 peak
//     times the profile's vector_efficiency (exp/tanh/divisions, vector units). Norms,
//     embedding, loss and optimizer ops take their roofline time times the profile's
//     compute.op_cost_scale of their kind (element-wise ops are the reference).
//   CPU profile (`cpu.shared_cores`): a rank gets threads_per_rank cores, each at the per-core
//     peak and memory bandwidth; when the ranks on the machine ask for more cores than it has,
//     each gets its share (cores / (ranks · threads)), and each thread of an op run on all the
//     cores keeps cpu.all_core_compute_efficiency / all_core_memory_efficiency of its rate. A GEMM runs on the threads the engine's
//     split rule gives it (strategy/cpu_threading.hpp: the larger output dimension cut into
//     blocks of >= 64, only from 4 MFLOP), as long as its largest block takes on one core. Other
//     ops of F FLOPs use min(threads, max(1, floor(F / cpu.parallel_grain))) threads (the kernels
//     parallelise only loops large enough to pay for it).

#include "strategy/scenario.hpp"

namespace tandem::sim {

struct GemmShape {
  double m = 0, n = 0, k = 0, batch = 1;
};

class ComputeCostModel {
 public:
  // `ranks_on_machine`: ranks sharing one machine's cores (the cpu profile; 1 for GPUs).
  ComputeCostModel(const strategy::HardwareProfile& profile, strategy::Precision precision,
                   int threads_per_rank = 1, int ranks_on_machine = 1, bool attention_dropout = false);
  // For a rank of the scenario's cluster in node group `node_group`.
  static ComputeCostModel for_scenario(const strategy::Scenario& scenario, int node_group = 0);

  // Seconds the op occupies the compute stream (0 for communication ops and markers).
  double op_time(const strategy::Op& op) const;

  // Fraction of peak a GEMM of this shape reaches (GEMM model, before the memory roofline).
  double gemm_efficiency(const GemmShape& shape) const;
  // The same on `units` compute units (cpu: the threads the GEMM runs on).
  double gemm_efficiency_on(const GemmShape& shape, double units) const;
  // Threads a GEMM runs on: the cpu backend's split rule (strategy/cpu_threading.hpp); batched
  // GEMMs (unfused attention) by cpu.parallel_grain; 1 on GPUs.
  int gemm_threads(const GemmShape& shape) const;
  // Time of a GEMM with `bytes` of memory traffic that passes over its output again at
  // `output_element_s` per element on one thread (gemm.output_cost of its phase).
  double gemm_time(const GemmShape& shape, double bytes, double output_element_s = 0) const;
  // Time of `bytes` streamed through memory or `flops` of vector arithmetic, whichever is longer,
  // times `cost_scale` (the op kind's compute.op_cost_scale), plus kernel overhead.
  double memory_time(double bytes, double flops = 0, double cost_scale = 1.0) const;
  double attention_time(const strategy::Op& op) const;

  double peak_flops() const { return peak_flops_ * compute_keep(threads_); }  // of this rank, this precision
  double memory_bandwidth() const { return memory_bandwidth_ * memory_keep(threads_); }  // achieved, of this rank
  // cpu profile: the fraction of its one-thread compute / memory rate each thread of an op run on
  // `op_threads` threads keeps (cpu.all_core_*_efficiency); 1 on GPUs.
  double compute_keep(int op_threads) const;
  double memory_keep(int op_threads) const;
  // Threads an op of `flops` FLOPs runs on (cpu.parallel_grain; the rank's threads otherwise).
  int threads_for(double flops) const;
  double kernel_overhead() const { return profile_.kernel_overhead_s; }
  const strategy::HardwareProfile& profile() const { return profile_; }

 private:
  strategy::HardwareProfile profile_;
  double others_busy(int op_threads) const;

  // The rank's rates with every thread at its one-thread pace (cpu: before compute_keep /
  // memory_keep of the threads an op uses).
  double peak_flops_ = 0;
  double vector_flops_ = 0;      // rate for element-wise arithmetic (fp32 peak)
  double memory_bandwidth_ = 0;  // achieved bytes/s
  int compute_units_ = 1;
  int threads_ = 1;             // the rank's threads (cpu profile), 1 otherwise
  double element_bytes_ = 2;
  // Fraction of peak/vector/memory rates one of the rank's threads gets (cpu profile: rates are
  // per thread so an op on fewer threads gets proportionally less).
  double per_thread_ = 1;
  double core_share_ = 1;  // of a core, each thread's (below 1 when ranks oversubscribe the cores)
  bool attention_dropout_ = false;
};

}  // namespace tandem::sim
