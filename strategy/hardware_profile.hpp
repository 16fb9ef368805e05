#pragma once
// A hardware profile: what one accelerator (or one CPU rank) and its node can do. Built-in
// profiles live in strategy/data/profiles/*.yaml (compiled in); tandem-calibrate writes fitted
// ones that a scenario's cluster.gpu can point to by path. Every number says where it came from
// in the profile's `sources`.

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace tandem::strategy {

enum class ComputeKind : std::uint8_t;     // strategy/program.hpp
enum class CollectiveKind : std::uint8_t;  // strategy/program.hpp

enum class Precision : std::uint8_t { Fp32, Bf16, Fp8 };

// GEMM efficiency model (DESIGN: "roofline plus an efficiency curve, not a constant").
// The kernel tiles the m x n output into tiles; tiles run in waves over `compute_units`; a
// partially filled last wave and padded edge tiles waste work (wave and tile quantization).
// The k loop has a fixed prologue/epilogue cost, modelled as efficiency k / (k + k_half).
// Achieved rate = peak * peak_efficiency * tile_efficiency(tile) * quantization * k-ramp,
// taking the best tile the library would choose; then the roofline against memory traffic.
struct GemmTile {
  int m = 128;
  int n = 128;
  double efficiency = 1.0;  // relative efficiency of this tile shape at full occupancy
};

struct GemmModel {
  double peak_efficiency = 0.8;  // fraction of peak a large, well-shaped GEMM reaches
  int compute_units = 108;       // SMs (GPU) or cores (CPU)
  double k_half = 64;            // k at which the k-loop ramp halves efficiency
  std::vector<GemmTile> tiles{{256, 128, 1.0}, {128, 128, 0.95}, {128, 64, 0.85}, {64, 64, 0.7}};
  // Time per output element a GEMM of one phase adds on one thread beyond its product, where the
  // kernel passes over its output again: the cpu backend's forward multiplies into a column-major
  // scratch and transposes it into the row-major output, its weight gradient accumulates into the
  // stored gradient (kernels/cpu/matmul.cpp). 0 where the library writes the output in place
  // (cuBLAS); the k-loop ramp above already charges every phase alike.
  struct OutputCost {
    double forward_s = 0;
    double backward_weight_s = 0;
  } output_cost;
};

struct LinkParameters {
  double bandwidth_bytes_per_s = 0;
  double latency_s = 0;
};

struct NicParameters {
  int count = 1;
  double bandwidth_bytes_per_s = 0;  // per NIC, per direction
  double latency_s = 0;
};

struct HardwareProfile {
  std::string name;
  std::string description;
  std::string backend = "cuda";  // which engine backend it describes: cuda | cpu
  std::vector<std::string> sources;
  std::string origin;            // "built-in" or the path it was read from
  std::string source_text;       // the YAML it was read from (runs record its SHA-256)

  double memory_capacity_bytes = 0;
  double memory_bandwidth_bytes_per_s = 0;
  double memory_efficiency = 0.8;     // achieved fraction of memory bandwidth (element-wise ops)
  double peak_flops_fp32 = 0;         // dense FLOP/s for fp32 GEMMs (tf32 on NVIDIA if enabled)
  double peak_flops_bf16 = 0;
  double peak_flops_fp8 = 0;
  double attention_efficiency = 0.5;  // fused attention relative to peak GEMM rate
  // How the attention core runs: fused (one flash-attention kernel: FLOPs at
  // attention_efficiency of peak, no s x s tensor in memory) or unfused (Megatron-LM 2021-22:
  // batched GEMMs costed by the GEMM model plus the softmax/dropout kernels streaming the
  // s x s score matrix through memory).
  bool attention_fused = true;
  double kernel_overhead_s = 0;       // fixed cost per launched op
  // cpu backend: fixed cost of one block of the attention kernel (one (batch, head) and up to
  // cpu_threading::kAttentionQueryBlock query rows: its small GEMMs, softmax rows and scratch).
  double attention_block_overhead_s = 0;
  // Achieved fraction of peak_flops_fp32 for the arithmetic of non-GEMM ops (element-wise,
  // norms, softmax/cross-entropy, optimizer) as the program counts their FLOPs: exp, tanh and
  // divisions cost more than one FLOP's time, and GPUs run them on the vector units, not the
  // tensor cores. 1 = the fp32 peak.
  double vector_efficiency = 1.0;
  // Multiplier on the roofline time (memory or vector arithmetic, whichever is longer) of a
  // non-GEMM op, per kind: on a CPU a LayerNorm's row reductions, an embedding's gather and the
  // optimizer's update each reach a different fraction of the streaming bandwidth, which one
  // bandwidth cannot express. Element-wise ops are the reference (no scale). 1 = the roofline.
  struct OpCostScale {
    double norm = 1.0;
    double embedding = 1.0;
    double loss = 1.0;
    double optimizer = 1.0;
    double of(ComputeKind kind) const;  // 1 for element-wise, GEMM and attention ops
    double& of(ComputeKind kind);       // only for the kinds of scaled_kinds()
    bool is_identity() const { return norm == 1.0 && embedding == 1.0 && loss == 1.0 && optimizer == 1.0; }
    // The kinds that have a scale, with their key under compute.op_cost_scale ("norm", ...).
    static const std::vector<std::pair<ComputeKind, std::string>>& scaled_kinds();
  };
  OpCostScale op_cost_scale;
  GemmModel gemm;

  int default_gpus_per_node = 8;
  LinkParameters intra_node;          // per GPU, per direction
  NicParameters nic;                  // defaults per node
  double collective_efficiency = 1.0; // achieved fraction of NVLink bandwidth (NCCL transfers)
  double nic_efficiency = 0;          // achieved fraction of NIC/fabric bandwidth (0 = collective_efficiency)
  double reduction_bandwidth_bytes_per_s = 0;  // memory-side cost of reductions (0 = from memory)
  // Fixed cost of one collective call, paid once whatever its size and algorithm (NCCL: kernel
  // launch and protocol setup, the base latency of its tuner; MPI: the library's call overhead).
  double collective_latency_s = 0;
  // The most bus bandwidth (nccl-tests busbw) NCCL's tree reaches, per GPU, however fast the
  // links it streams through: the tree's kernels reduce and forward every chunk through a few
  // thread blocks per channel, and NCCL's own tuner caps the tree at nChannels x perChMaxTreeBw
  // (src/graph/tuning.cc; Ampere 24.0 / 23.6 / 17.8 GB/s per channel on 1 / 2 / 3+ nodes). A tree
  // collective takes at least its ring-equivalent bytes per rank over this. 0 = no cap.
  double tree_bandwidth_bytes_per_s = 0;
  // NCCL's low-latency protocols (LL, LL128): below a few MiB its tuner runs the tree with them,
  // trading bandwidth for latency (the Azure A100 logs on 4+ nodes: ~31 us/MiB up to 4 MiB, then
  // ~19 us/MiB with ~40 us more fixed cost). The twin prices a tree both ways and takes the
  // faster, as the tuner does: this protocol caps the tree's bus bandwidth at ll_tree_bandwidth
  // and saves ll_latency_saving of the fixed per-collective latency. 0 = not modelled.
  double ll_tree_bandwidth_bytes_per_s = 0;
  double ll_latency_saving_s = 0;
  // The most one point-to-point stream between two nodes reaches (NCCL's send/recv across the
  // network runs on a few channels per peer, NCCL_NCHANNELS_PER_NET_PEER): a send/recv between
  // nodes takes at least its bytes over this, however fast the NICs. On the 10-node H100 logs in
  // shared/data a sendrecv reached ~25 GB/s where the ring all-reduce reached ~49 GB/s busbw per
  // GPU. 0 = no cap.
  double p2p_bandwidth_bytes_per_s = 0;
  // Multiplier on the bytes every transfer of a collective kind carries (node.collective_cost_scale
  // .<kind>), with send/recv the reference (no scale): MPI runs each collective with its own
  // algorithm and copies, which one link bandwidth cannot express. On the development VM,
  // OpenMPI's non-blocking all-gather moved its bytes ~4x slower than a send of the same bytes.
  // 1 = the links' bandwidth (the GPU profiles: NCCL's collectives are modelled algorithm by
  // algorithm).
  struct CollectiveCostScale {
    double all_reduce = 1.0;
    double reduce_scatter = 1.0;
    double all_gather = 1.0;
    double all_to_all = 1.0;
    double broadcast = 1.0;
    double of(CollectiveKind kind) const;  // 1 for send/recv
    double& of(CollectiveKind kind);       // only for the kinds of scaled_kinds()
    bool is_identity() const;
    // The kinds that have a scale, with their key under node.collective_cost_scale ("all_reduce", ...).
    static const std::vector<std::pair<CollectiveKind, std::string>>& scaled_kinds();
  };
  CollectiveCostScale collective_cost_scale;

  // Ranks that share one machine's cores (the cpu profile): compute rate divided among them.
  bool shared_cores = false;
  int cores = 0;                      // physical cores of the machine (cpu profile)
  // Work per additional kernel thread (cpu profile): an op of F FLOPs other than a GEMM runs on
  // min(threads, max(1, floor(F / parallel_grain_flops))) of its rank's threads, as the CPU
  // kernels parallelise only loops large enough to pay for it. 0 = every op uses every thread.
  // GEMMs follow the kernels' own split rule (strategy/cpu_threading.hpp).
  double parallel_grain_flops = 0;
  // What each of an op's threads keeps of its one-thread compute rate and memory bandwidth when
  // the op runs on every core of the machine (cpu profile): the threads of one op split its
  // loops and GEMM blocks, share its operands and wait for each other at its end, and stream the
  // same large arrays. Interpolated linearly in the op's other threads (busy = min(cores, the
  // threads the op runs on)); 1 = threads scale perfectly. Neither the rank's idle threads nor
  // other ranks' cores count: on the development VM a 1-thread rank beside another 1-thread rank
  // ran its ops 0-2% slower than alone (GEMMs +1%), and a loop left on one thread of a 2-thread
  // rank took its one-thread time, while 2 threads of one GEMM kept ~93% of their compute rate.
  double all_core_compute_efficiency = 1.0;
  double all_core_memory_efficiency = 1.0;

  double peak_flops(Precision precision) const;
  // Bytes per element of weights/activations in this precision (fp8 keeps bf16 activations).
  static double bytes_per_element(Precision precision);
};

// A built-in profile by name, or a YAML file by path (relative paths against `base_dir`).
// Throws ScenarioError naming `field` (e.g. "cluster.gpu") with the valid choices.
HardwareProfile load_hardware_profile(const std::string& name_or_path,
                                      const std::filesystem::path& base_dir,
                                      const std::string& field = "cluster.gpu");
HardwareProfile parse_hardware_profile(const std::string& yaml_text, const std::string& origin,
                                       const std::string& field);
// The profile as YAML that parse_hardware_profile reads back (tandem-calibrate writes these).
std::string hardware_profile_to_yaml(const HardwareProfile& profile);
std::vector<std::string> builtin_profile_names();


}  // namespace tandem::strategy
