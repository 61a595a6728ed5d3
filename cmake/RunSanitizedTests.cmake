# Builds the scheduler, the dashboard and the data-parallel step
# synchronization (no LibTorch) with SANITIZE (thread: ThreadSanitizer;
# address: AddressSanitizer, UndefinedBehaviorSanitizer and leak checking)
# in BINARY_DIR and runs their unit tests there; fails on any report. Run by
# ctest as `tsan.scheduler` and `asan.scheduler`. (The install test is
# neither a concurrency nor a memory test.)
#
# Built with clang when it is installed (Debian packages clang, libomp-dev
# and libclang-rt-dev): its -Wthread-safety analysis then checks every
# PACKTRAIN_GUARDED_BY at compile time as well (cmake/Warnings.cmake makes
# a violation an error), and TSan checks what the analysis cannot see.
include(${CMAKE_CURRENT_LIST_DIR}/ScriptSteps.cmake)
find_program(CLANGXX NAMES clang++ clang++-16 clang++-15 clang++-14)
set(compiler_args)
if(CLANGXX)
  set(compiler_args -DCMAKE_CXX_COMPILER=${CLANGXX})
  message(STATUS "${SANITIZE}: building with ${CLANGXX} (-Wthread-safety)")
else()
  message(STATUS "${SANITIZE}: clang++ not found, building with the default compiler (no -Wthread-safety)")
endif()
packtrain_fresh_if_other_compiler(${BINARY_DIR} "${CLANGXX}")
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${compiler_args}
    -DPACKTRAIN_WITH_TORCH=OFF -DPACKTRAIN_WITH_MPI=OFF -DPACKTRAIN_SANITIZE=${SANITIZE} -DPACKTRAIN_BUILD_BENCH=OFF -DPACKTRAIN_BUILD_EXAMPLES=OFF)
run(${CMAKE_COMMAND} --build ${BINARY_DIR} -j2 --target scheduler_tests dashboard_tests dataparallel_sync_tests)
if(SANITIZE STREQUAL "thread")
  set(ENV{TSAN_OPTIONS} "halt_on_error=1 second_deadlock_stack=1 suppressions=${SUPPRESSIONS}")
  set(ENV{PACKTRAIN_STRESS_ITEMS} 1000000)
else()
  set(ENV{ASAN_OPTIONS} "detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1")
  set(ENV{UBSAN_OPTIONS} "halt_on_error=1:print_stacktrace=1")
  set(ENV{PACKTRAIN_STRESS_ITEMS} 100000)
endif()
run(${CMAKE_COMMAND} -E env ctest --test-dir ${BINARY_DIR} -L unit -E "^install[.]" --output-on-failure -j1)
