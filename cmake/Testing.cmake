include(GoogleTest)

# packtrain_add_test(NAME n SOURCES a.cpp ... LIBS lib ... LABELS unit|cli|slow|mpi|gpu|tsan|browser
#                    [TIMEOUT s] [PCH] [ONE_PROCESS])
# One GoogleTest binary; each TEST in it becomes a ctest test carrying LABELS.
# PCH reuses the LibTorch precompiled header (for sources that include torch).
# ONE_PROCESS registers the whole binary as one ctest test named NAME instead:
# a process that links LibTorch takes about a second to start, and a test
# case that loads Fashion-MNIST another two, which one process pays once
# (data::shared_dataset caches it) where a process per case paid them 150
# times (`ctest -L unit` took 185 s; 25 s so). gtest's own output, printed on
# failure, names the failing cases; run one with `NAME --gtest_filter=Suite.Case`.
function(packtrain_add_test)
  cmake_parse_arguments(T "PCH;ONE_PROCESS" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} packtrain_test_common GTest::gtest_main)
  packtrain_set_warnings(${T_NAME})
  if(T_PCH)
    packtrain_reuse_torch_pch(${T_NAME})
  endif()
  if(T_ONE_PROCESS)
    add_test(NAME ${T_NAME} COMMAND ${T_NAME} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
    return()
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
