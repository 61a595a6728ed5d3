// Compiled into every program that links packtrain::train (an interface
// source of the library, train/CMakeLists.txt): before main, re-executes
// the program with OPENBLAS_CORETYPE set where OpenBLAS fell back to old
// kernels (packtrain/train/blas.hpp). Shared libraries' constructors,
// OpenBLAS's included, have run by now.
#include <packtrain/train/blas.hpp>

namespace {

__attribute__((constructor)) void packtrain_select_blas_kernels() { packtrain::train::use_the_best_blas_kernels(); }

}  // namespace
