include(GoogleTest)

# packtrain_add_test(NAME n SOURCES a.cpp ... LIBS lib ... LABELS unit|cli|slow|mpi|gpu|tsan|browser [TIMEOUT s] [PCH])
# One GoogleTest binary; each TEST in it becomes a ctest test carrying LABELS.
# PCH reuses the LibTorch precompiled header (for sources that include torch).
function(packtrain_add_test)
  cmake_parse_arguments(T "PCH" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} packtrain_test_common GTest::gtest_main)
  packtrain_set_warnings(${T_NAME})
  if(T_PCH)
    packtrain_reuse_torch_pch(${T_NAME})
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
