#include "sim/compute_cost.hpp"

#include <algorithm>
#include <cmath>

#include "strategy/cpu_threading.hpp"

namespace tandem::sim {

using strategy::ComputeKind;
using strategy::OpCode;
using strategy::Phase;
using strategy::OpType;

ComputeCostModel::ComputeCostModel(const strategy::HardwareProfile& profile, strategy::Precision precision,
                                   int threads_per_rank, int ranks_on_machine, bool attention_dropout)
    : profile_(profile), attention_dropout_(attention_dropout) {
  element_bytes_ = strategy::HardwareProfile::bytes_per_element(precision);
  double peak = profile.peak_flops(precision);
  if (peak <= 0) peak = profile.peak_flops_bf16 > 0 ? profile.peak_flops_bf16 : profile.peak_flops_fp32;
  double vector = (profile.peak_flops_fp32 > 0 ? profile.peak_flops_fp32 : peak) *
                  (profile.vector_efficiency > 0 ? profile.vector_efficiency : 1.0);
  double bandwidth = profile.memory_bandwidth_bytes_per_s * profile.memory_efficiency;
  compute_units_ = std::max(1, profile.gemm.compute_units);
  if (profile.shared_cores) {
    // Per-core numbers: a rank runs on threads_per_rank cores, shared when oversubscribed.
    const double threads = std::max(1, threads_per_rank);
    const double wanted = threads * std::max(1, ranks_on_machine);
    const double share = profile.cores > 0 ? std::min(1.0, profile.cores / wanted) : 1.0;
    // Rates of all the rank's threads at their one-thread pace; each op then keeps the fraction
    // compute_keep / memory_keep of the threads it runs on (see there).
    peak *= threads * share;
    vector *= threads * share;
    bandwidth *= threads * share;
    compute_units_ = std::max(1, static_cast<int>(std::lround(threads)));
    threads_ = compute_units_;
    per_thread_ = 1.0 / threads_;
    core_share_ = share;
  }
  peak_flops_ = peak;
  vector_flops_ = vector;
  memory_bandwidth_ = bandwidth;
}

// Each thread's rate falls as the op's other threads join it (split loops and GEMM blocks,
// shared operands and caches, the op's end waiting for every thread): linear in the fraction of
// the machine's other cores the op uses. Neither the rank's idle threads (an op of a 2-thread
// rank run on one thread took its one-thread time) nor other ranks' cores (a 1-thread rank beside
// another ran its ops 0-2% slower than alone) slow it down measurably.
double ComputeCostModel::others_busy(int op_threads) const {
  if (!profile_.shared_cores || profile_.cores <= 1 || op_threads <= 1) return 0.0;
  return static_cast<double>(std::min(op_threads, profile_.cores) - 1) / (profile_.cores - 1);
}

double ComputeCostModel::compute_keep(int op_threads) const {
  return 1 - (1 - profile_.all_core_compute_efficiency) * others_busy(op_threads);
}

double ComputeCostModel::memory_keep(int op_threads) const {
  return 1 - (1 - profile_.all_core_memory_efficiency) * others_busy(op_threads);
}

ComputeCostModel ComputeCostModel::for_scenario(const strategy::Scenario& scenario, int node_group) {
  const auto& cluster = scenario.cluster;
  const auto& group = cluster.node_groups.empty()
                          ? cluster.profile
                          : cluster.node_groups.at(static_cast<std::size_t>(node_group)).profile;
  const strategy::Precision precision =
      scenario.strategy ? scenario.strategy->precision : strategy::Precision::Bf16;
  const bool dropout = scenario.model && scenario.model->dropout > 0;
  return ComputeCostModel(group, precision, cluster.threads_per_rank, cluster.gpus(), dropout);
}

int ComputeCostModel::threads_for(double flops) const {
  const double grain = profile_.parallel_grain_flops;
  if (threads_ <= 1 || grain <= 0) return threads_;
  return static_cast<int>(std::clamp(std::floor(flops / grain), 1.0, static_cast<double>(threads_)));
}

double ComputeCostModel::gemm_efficiency(const GemmShape& shape) const {
  const double units = threads_ > 1 ? gemm_threads(shape) : compute_units_;
  return gemm_efficiency_on(shape, units);
}

double ComputeCostModel::gemm_efficiency_on(const GemmShape& shape, double units) const {
  const double m = std::max(1.0, shape.m);
  const double n = std::max(1.0, shape.n);
  const double k = std::max(1.0, shape.k);
  const double batch = std::max(1.0, shape.batch);
  double best = 0;
  for (const strategy::GemmTile& tile : profile_.gemm.tiles) {
    const double tiles_m = std::ceil(m / tile.m);
    const double tiles_n = std::ceil(n / tile.n);
    const double tiles = tiles_m * tiles_n * batch;
    const double waves = std::ceil(tiles / units);
    const double wave_efficiency = tiles / (waves * units);
    const double padding_efficiency = (m * n) / (tiles_m * tile.m * tiles_n * tile.n);
    best = std::max(best, tile.efficiency * wave_efficiency * padding_efficiency);
  }
  if (profile_.gemm.tiles.empty()) best = 1;
  const double k_ramp = k / (k + std::max(0.0, profile_.gemm.k_half));
  return profile_.gemm.peak_efficiency * best * k_ramp;
}

int ComputeCostModel::gemm_threads(const GemmShape& shape) const {
  if (threads_ <= 1) return 1;
  if (shape.batch > 1) return threads_for(2 * shape.m * shape.n * shape.k * shape.batch);
  return strategy::cpu_threading::gemm_threads(threads_, static_cast<std::int64_t>(std::max(shape.m, shape.n)),
                                               2 * shape.m * shape.n * shape.k);
}

double ComputeCostModel::gemm_time(const GemmShape& shape, double bytes, double output_element_s) const {
  // The kernel's pass over its output after the product, by each thread over its own block.
  const double output_pass_s = output_element_s / core_share_;
  const double flops = 2 * shape.m * shape.n * shape.k * std::max(1.0, shape.batch);
  if (threads_ > 1 && shape.batch <= 1) {
    // The cpu backend's split (strategy/cpu_threading.hpp): the larger output dimension is cut
    // into blocks, one per thread, each a single-threaded GEMM on its own core; the op lasts as
    // long as the largest block.
    const int threads = gemm_threads(shape);
    GemmShape block = shape;
    double& split = shape.m <= shape.n ? block.n : block.m;
    split = static_cast<double>(
        strategy::cpu_threading::split_block(static_cast<std::int64_t>(split), threads));
    const double block_flops = 2 * block.m * block.n * block.k;
    const double efficiency = std::max(1e-6, gemm_efficiency_on(block, 1));
    const double compute = block_flops / (peak_flops_ * per_thread_ * compute_keep(threads) * efficiency);
    const double memory = bytes / (memory_bandwidth_ * threads * per_thread_ * memory_keep(threads));
    return std::max(compute, memory) + output_pass_s * block.m * block.n + profile_.kernel_overhead_s;
  }
  const double efficiency = std::max(1e-6, gemm_efficiency(shape));
  const int threads = threads_ > 1 ? gemm_threads(shape) : 1;
  const double used = threads_ > 1 ? threads * per_thread_ : 1.0;  // fraction of the rank's rate
  const double compute = flops / (peak_flops_ * used * compute_keep(threads) * efficiency);
  const double memory = bytes / (memory_bandwidth_ * used * memory_keep(threads));
  const double output_elements = shape.m * shape.n * std::max(1.0, shape.batch) / threads;
  return std::max(compute, memory) + output_pass_s * output_elements + profile_.kernel_overhead_s;
}

double ComputeCostModel::memory_time(double bytes, double flops, double cost_scale) const {
  const int threads = threads_ > 1 ? threads_for(flops) : 1;
  const double used = threads_ > 1 ? threads * per_thread_ : 1.0;
  return cost_scale * std::max(bytes / (memory_bandwidth_ * used * memory_keep(threads)),
                               flops / (vector_flops_ * used * compute_keep(threads))) +
         profile_.kernel_overhead_s;
}

double ComputeCostModel::attention_time(const strategy::Op& op) const {
  const double q = static_cast<double>(std::max<std::int64_t>(1, op.m));
  const double keys = static_cast<double>(std::max<std::int64_t>(1, op.n));
  const double d = static_cast<double>(std::max<std::int64_t>(1, op.k));
  const double batch = static_cast<double>(std::max<std::int64_t>(1, op.batch));
  const bool backward = op.code == OpCode::AttentionCoreBackward;
  if (profile_.shared_cores && profile_.backend == "cpu" && q == keys) {
    // The engine's CPU kernel (kernels/cpu/attention.cpp): causal self-attention in blocks of
    // kAttentionQueryBlock query rows per (batch, head), each computing scores against the keys
    // it can see, spread over the threads its loop rule gives it (work = B·H·T²·D).
    namespace cpu = strategy::cpu_threading;
    const auto T = static_cast<std::int64_t>(q);
    const double blocks = batch * static_cast<double>((T + cpu::kAttentionQueryBlock - 1) / cpu::kAttentionQueryBlock);
    const auto work = static_cast<std::int64_t>(batch * q * keys * d);
    // Forward hands out one task per block, backward one per (batch, head).
    const double tasks = backward ? batch : blocks;
    const int threads =
        threads_ > 1 ? std::max(1, std::min(cpu::loop_threads(threads_, work), static_cast<int>(std::min(tasks, 1e9))))
                     : 1;
    const double used = threads_ > 1 ? threads * per_thread_ : 1.0;
    const double compute = op.flops * cpu::attention_scores_fraction(T) /
                           (peak_flops_ * used * compute_keep(threads) * std::max(1e-6, profile_.attention_efficiency));
    return compute + std::ceil(blocks / threads) * profile_.attention_block_overhead_s + profile_.kernel_overhead_s;
  }
  if (profile_.attention_fused || q * keys * d * batch <= 0) {
    const int threads = threads_ > 1 ? threads_for(op.flops) : 1;
    const double used = threads_ > 1 ? threads * per_thread_ : 1.0;
    const double compute =
        op.flops / (peak_flops_ * used * compute_keep(threads) * std::max(1e-6, profile_.attention_efficiency));
    return std::max(compute, op.bytes / (memory_bandwidth_ * used * memory_keep(threads))) + profile_.kernel_overhead_s;
  }
  // Unfused: the batched GEMMs of the shape the op records, scaled to the op's FLOPs (ring
  // attention splits one op into cp blocks), plus the score matrix through memory.
  const double e = element_bytes_;
  auto gemm = [&](double m, double n, double k) {
    return gemm_time({m, n, k, batch}, e * batch * (m * k + k * n + m * n));
  };
  double time = 0;
  if (!backward) {
    time += gemm(q, keys, d);  // scores = Q·Kᵀ
    time += gemm(q, d, keys);  // output = P·V
  } else {
    time += gemm(keys, d, q);  // dV = Pᵀ·dO
    time += gemm(q, keys, d);  // dP = dO·Vᵀ
    time += gemm(q, d, keys);  // dQ = dS·K
    time += gemm(keys, d, q);  // dK = dSᵀ·Q
  }
  const double gemm_flops = (backward ? 8 : 4) * batch * q * keys * d;
  if (gemm_flops > 0 && op.flops > 0) time *= op.flops / gemm_flops;
  const double scores = batch * q * keys * (op.flops > 0 && gemm_flops > 0 ? op.flops / gemm_flops : 1);
  double bytes_per_score = backward ? 3 * e : 2 * e;  // softmax (backward: P, dP in, dS out)
  int kernels = 1;
  if (attention_dropout_) {
    bytes_per_score += 2 * e + 1;  // dropout: in, out, 1-byte mask
    ++kernels;
  }
  time += scores * bytes_per_score / (memory_bandwidth_ * memory_keep(threads_)) + kernels * profile_.kernel_overhead_s;
  return time;
}

double ComputeCostModel::op_time(const strategy::Op& op) const {
  if (op.type != OpType::Compute) return 0;
  if (op.bytes <= 0 && op.flops <= 0) return 0;  // no work, no kernel (the residual backward)
  switch (op.compute_kind) {
    case ComputeKind::Matmul: {
      const auto& output = profile_.gemm.output_cost;
      const double output_element_s = op.phase == Phase::Forward          ? output.forward_s
                                      : op.phase == Phase::BackwardWeight ? output.backward_weight_s
                                                                          : 0.0;
      return gemm_time({static_cast<double>(op.m), static_cast<double>(op.n), static_cast<double>(op.k),
                        static_cast<double>(std::max<std::int64_t>(1, op.batch))},
                       op.bytes, output_element_s);
    }
    case ComputeKind::Attention:
      return attention_time(op);
    case ComputeKind::Optimizer:
    case ComputeKind::Norm:
    case ComputeKind::Embedding:
    case ComputeKind::Loss:
      return memory_time(op.bytes, op.flops, profile_.op_cost_scale.of(op.compute_kind));
    case ComputeKind::Elementwise:
    case ComputeKind::None:
      return memory_time(op.bytes, op.flops);
  }
  return memory_time(op.bytes, op.flops);
}

}  // namespace tandem::sim
