# Builds the libFuzzer targets of tests/fuzz with clang in BINARY_DIR
# (PACKTRAIN_SANITIZE=fuzzer: no LibTorch, no MPI) and runs each for
# $ENV{PACKTRAIN_FUZZ_SECONDS} seconds (default 20) from its seeds in
# tests/fuzz/corpus/NAME, copied to BINARY_DIR/corpus/NAME, where the inputs
# it finds interesting are kept between runs. Fails on any crash, sanitizer
# report, uncaught exception, leak, input slower than 10 s or use of more
# than 2 GiB; the input is left in BINARY_DIR/findings. Run by ctest as
# `fuzz.parsers`.
include(${CMAKE_CURRENT_LIST_DIR}/ScriptSteps.cmake)
set(seconds 20)
if(DEFINED ENV{PACKTRAIN_FUZZ_SECONDS})
  set(seconds $ENV{PACKTRAIN_FUZZ_SECONDS})
endif()
packtrain_fresh_if_other_compiler(${BINARY_DIR} "${CLANGXX}")
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DCMAKE_CXX_COMPILER=${CLANGXX} -DCMAKE_C_COMPILER=${CLANGC}
    -DPACKTRAIN_WITH_TORCH=OFF -DPACKTRAIN_WITH_MPI=OFF -DPACKTRAIN_SANITIZE=fuzzer -DPACKTRAIN_BUILD_BENCH=OFF
    -DPACKTRAIN_BUILD_EXAMPLES=OFF)
set(targets idx cifar mnist_digits npy job_files journal config)
set(binaries)
foreach(name ${targets})
  list(APPEND binaries fuzz_${name})
endforeach()
run(${CMAKE_COMMAND} --build ${BINARY_DIR} -j2 --target ${binaries})
file(MAKE_DIRECTORY ${BINARY_DIR}/findings)
foreach(name ${targets})
  file(MAKE_DIRECTORY ${BINARY_DIR}/corpus/${name})
  file(GLOB seeds ${SOURCE_DIR}/tests/fuzz/corpus/${name}/*)
  file(COPY ${seeds} DESTINATION ${BINARY_DIR}/corpus/${name})
  message(STATUS "fuzz_${name}: ${seconds} s")
  run(${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
      ${BINARY_DIR}/tests/fuzz/fuzz_${name} -max_total_time=${seconds} -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -artifact_prefix=${BINARY_DIR}/findings/${name}- ${BINARY_DIR}/corpus/${name})
endforeach()
