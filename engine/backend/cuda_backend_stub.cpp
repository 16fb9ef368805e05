// Builds without the CUDA toolkit: the CUDA backend is absent and choosing it is refused.
#include "engine/backend/backend.hpp"

namespace tandem::engine {

bool cuda_backend_compiled() { return false; }

std::unique_ptr<Backend<float>> make_cuda_backend(int /*device*/) {
  throw BackendError(
      "no CUDA device found: this engine was built without CUDA (cluster.gpu selects a GPU "
      "profile; use cluster.gpu: cpu, or rebuild with the CUDA toolkit)");
}

}  // namespace tandem::engine
