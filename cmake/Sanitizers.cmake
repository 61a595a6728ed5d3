# PACKTRAIN_SANITIZE=thread builds everything with ThreadSanitizer,
# PACKTRAIN_SANITIZE=address with AddressSanitizer + UndefinedBehaviorSanitizer.
# Used by the `tsan` test, which builds the scheduler alone this way.
if(PACKTRAIN_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -g -O1)
  add_link_options(-fsanitize=thread)
elseif(PACKTRAIN_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT PACKTRAIN_SANITIZE STREQUAL "")
  message(FATAL_ERROR "PACKTRAIN_SANITIZE must be thread, address or empty, not '${PACKTRAIN_SANITIZE}'")
endif()
