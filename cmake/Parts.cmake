# packtrain_add_part(NAME n SOURCES a.cpp ... [PUBLIC_LIBS ...] [PRIVATE_LIBS ...] [TORCH])
# One static library per folder, packtrain::<n>, headers under <folder>/include,
# installed and exported. TORCH: the sources include LibTorch, so the target
# reuses the one LibTorch precompiled header.
function(packtrain_add_part)
  cmake_parse_arguments(P "TORCH" "NAME" "SOURCES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  set(target packtrain_${P_NAME})
  add_library(${target} STATIC ${P_SOURCES})
  add_library(packtrain::${P_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${P_NAME} OUTPUT_NAME packtrain_${P_NAME})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${P_PUBLIC_LIBS} PRIVATE ${P_PRIVATE_LIBS})
  packtrain_set_warnings(${target})
  if(P_TORCH)
    packtrain_reuse_torch_pch(${target})
  endif()
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  set_property(GLOBAL APPEND PROPERTY PACKTRAIN_EXPORTED_TARGETS ${target})
endfunction()
