// examples/distributed_fashion_mnist under a real mpirun with two ranks.
#include "common/test_util.hpp"

#include <gtest/gtest.h>

TEST(Examples, DistributedFashionMnistSharesTheSweepBetweenRanks) {
  const auto r = packtrain::testing::run_command({PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np",
                                                  "2", PACKTRAIN_EXAMPLE_DISTRIBUTED});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rank 0: ran"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 1: ran"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("job(s) of 8"), std::string::npos) << r.out;  // both ranks know every job
  EXPECT_NE(r.out.find("lenet5       cosine      4/4"), std::string::npos) << r.out;
}
