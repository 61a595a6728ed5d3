#pragma once
// Runs a function when the scope ends, also when it ends by an exception
// (giving back a work-pool seat, putting a model back in training mode).
//
//   const packtrain::AtScopeEnd back([&] { model->train(); });
#include <utility>

namespace packtrain {

template <typename F>
class AtScopeEnd {
 public:
  explicit AtScopeEnd(F fn) : fn_(std::move(fn)) {}
  ~AtScopeEnd() { fn_(); }
  AtScopeEnd(const AtScopeEnd&) = delete;
  AtScopeEnd& operator=(const AtScopeEnd&) = delete;

 private:
  F fn_;
};

}  // namespace packtrain
