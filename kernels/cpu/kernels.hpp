#pragma once
// All CPU kernels (tandem::kernels::cpu). Each header documents its layouts and what backward
// needs saved; see also threading.hpp before calling any of them.
#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/adamw.hpp"
#include "kernels/cpu/attention.hpp"
#include "kernels/cpu/cross_entropy.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/embedding.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/normalization.hpp"
#include "kernels/cpu/rope.hpp"
#include "kernels/cpu/threading.hpp"
