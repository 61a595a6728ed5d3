# PACKTRAIN_SANITIZE=thread builds everything with ThreadSanitizer,
# PACKTRAIN_SANITIZE=address with AddressSanitizer + UndefinedBehaviorSanitizer,
# PACKTRAIN_SANITIZE=fuzzer with both and libFuzzer's coverage (clang only:
# tests/fuzz links its targets with -fsanitize=fuzzer).
# Used by the `tsan` and `fuzz` tests, which build the LibTorch-free parts
# alone this way.
if(PACKTRAIN_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -g -O1)
  add_link_options(-fsanitize=thread)
elseif(PACKTRAIN_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
  add_link_options(-fsanitize=address,undefined)
elseif(PACKTRAIN_SANITIZE STREQUAL "fuzzer")
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PACKTRAIN_SANITIZE=fuzzer needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                      -g -O1)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT PACKTRAIN_SANITIZE STREQUAL "")
  message(FATAL_ERROR "PACKTRAIN_SANITIZE must be thread, address, fuzzer or empty, not '${PACKTRAIN_SANITIZE}'")
endif()
