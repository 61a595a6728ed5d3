# Builds dataparallel_sync_tests (no LibTorch) with ThreadSanitizer in
# BINARY_DIR and runs them there; fails on any report. Run by ctest as
# `tsan.dataparallel`. The same steps as cmake/RunTsanTests.cmake (clang when
# installed, for -Wthread-safety), for another target.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
find_program(CLANGXX NAMES clang++ clang++-16 clang++-15 clang++-14)
set(compiler_args)
if(CLANGXX)
  set(compiler_args -DCMAKE_CXX_COMPILER=${CLANGXX})
endif()
if(CLANGXX AND EXISTS ${BINARY_DIR}/CMakeCache.txt)
  file(STRINGS ${BINARY_DIR}/CMakeCache.txt cached REGEX "^CMAKE_CXX_COMPILER:")
  string(REGEX REPLACE "^CMAKE_CXX_COMPILER:[A-Z]+=" "" cached "${cached}")
  if(NOT cached STREQUAL CLANGXX)
    file(REMOVE_RECURSE ${BINARY_DIR})
  endif()
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${compiler_args}
    -DPACKTRAIN_WITH_TORCH=OFF -DPACKTRAIN_WITH_MPI=OFF -DPACKTRAIN_SANITIZE=thread -DPACKTRAIN_BUILD_BENCH=OFF)
run(${CMAKE_COMMAND} --build ${BINARY_DIR} -j2 --target dataparallel_sync_tests)
set(ENV{TSAN_OPTIONS} "halt_on_error=1 second_deadlock_stack=1 suppressions=${SUPPRESSIONS}")
set(ENV{PACKTRAIN_STRESS_ITEMS} 200000)
run(${CMAKE_COMMAND} -E env ctest --test-dir ${BINARY_DIR} -R "^(ReductionTree|StepSync)[.]" --output-on-failure -j1)
