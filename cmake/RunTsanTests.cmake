# Builds the scheduler and the dashboard (no LibTorch) with ThreadSanitizer
# in BINARY_DIR and runs their unit tests there; fails on any report. Run by
# ctest as `tsan.scheduler`. (The install test is not a concurrency test.)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DPACKTRAIN_WITH_TORCH=OFF -DPACKTRAIN_WITH_MPI=OFF -DPACKTRAIN_SANITIZE=thread -DPACKTRAIN_BUILD_BENCH=OFF)
run(${CMAKE_COMMAND} --build ${BINARY_DIR} -j2 --target scheduler_tests dashboard_tests)
set(ENV{TSAN_OPTIONS} "halt_on_error=1 second_deadlock_stack=1 suppressions=${SUPPRESSIONS}")
set(ENV{PACKTRAIN_STRESS_ITEMS} 1000000)
run(${CMAKE_COMMAND} -E env ctest --test-dir ${BINARY_DIR} -L unit -E "^install[.]" --output-on-failure -j1)
