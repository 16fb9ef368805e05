#pragma once
// The hardware profile of the whole-simulation tests: an idealised accelerator with exact round
// numbers, no latency, no overheads, efficiency 1, so results can be checked against closed forms.

namespace tandem::sim::testing {

constexpr const char* kIdealProfile = R"(name: ideal
backend: cuda
memory: {capacity: 1000GiB, bandwidth: 1000GB/s, efficiency: 1}
compute: {fp32: 100TFLOP/s, bf16: 100TFLOP/s, fp8: 0TFLOP/s, attention_efficiency: 1, kernel_overhead: 0us}
gemm: {peak_efficiency: 1, compute_units: 1, k_half: 0, tiles: [[1, 1, 1.0]]}
node:
  gpus_per_node: 1
  intra_node: {bandwidth: 100GB/s, latency: 0us}
  nic: {count: 1, bandwidth: 100GB/s, latency: 0us}
  collective_efficiency: 1
)";

}  // namespace tandem::sim::testing
