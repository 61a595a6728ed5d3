#pragma once
// Which kernels OpenBLAS runs LibTorch's matrix products with, and the
// choice made for it where its own is poor.
//
// OpenBLAS (built DYNAMIC_ARCH, as Debian's is) picks its kernels from the
// CPU's model number when it loads. On a CPU it does not know by number,
// as a virtual machine's often is ("Intel(R) Xeon(R) Processor"), it falls
// back to its Prescott (SSE3) kernels even where the CPU has AVX2 or
// AVX-512: matrix products then run 3 to 4x slower (bench_step; on the
// build machine an mlp step took 3.35 ms on Prescott's kernels, 1.23 ms on
// SkylakeX's). OpenBLAS reads OPENBLAS_CORETYPE once, when it loads, so
// every program that links packtrain::train re-executes itself once at
// start with it set (train/src/blas_select.cpp) when OpenBLAS fell back and
// the CPU can take better. The re-executed program then removes it from
// its environment again, so that the programs it starts (on other
// machines, perhaps) choose for themselves. An OPENBLAS_CORETYPE the user
// set is left as it is (and is how to opt out, e.g. under valgrind).
#include <string>

namespace packtrain::train {

// The kernels OpenBLAS runs ("SkylakeX", "Haswell", "Prescott"...); empty
// when LibTorch's BLAS is not OpenBLAS.
std::string blas_core();

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 and FMA, with the OS saving their registers
  bool avx512 = false;    // AVX-512 F, CD, BW, DQ and VL, likewise
};
CpuFeatures this_cpu();

// The OPENBLAS_CORETYPE for a CPU with `cpu` when OpenBLAS picked `picked`
// on its own: SkylakeX or Haswell where `picked` is one of its fallbacks
// for CPUs it does not know (pre-AVX2 kernels), else empty (keep it).
std::string better_blas_core(const std::string& picked, const CpuFeatures& cpu);

// Where better_blas_core() names kernels and OPENBLAS_CORETYPE is unset:
// sets it (and PACKTRAIN_BLAS_REPLACED to OpenBLAS's own pick) and
// executes this program again (/proc/self/exe, the same arguments and
// process id); called there again, it removes both. Returns only where
// there is nothing to do, in the re-executed program, or where the
// execution failed.
void use_the_best_blas_kernels();

// OpenBLAS's own pick that this process replaced ("Prescott"); empty when
// it runs OpenBLAS's own pick or the user's OPENBLAS_CORETYPE.
std::string blas_core_replaced();

}  // namespace packtrain::train
