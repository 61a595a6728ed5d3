#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/resources.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>

using packtrain::detect_node_resources;
using packtrain::ResourceProbe;
using packtrain::testing::TempDir;
using packtrain::testing::write_file;

namespace {

ResourceProbe fake(const TempDir& dir, std::vector<int> affinity) {
  ResourceProbe p;
  p.cgroup_root = (dir / "cgroup").string();
  p.proc_self_cgroup = (dir / "proc_self_cgroup").string();
  p.affinity = std::move(affinity);
  p.physical_memory_mb = 64 * 1024;
  return p;
}

}  // namespace

TEST(Resources, AffinityMaskGivesTheCores) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/\n");
  const auto node = detect_node_resources(fake(dir, {5, 1, 3}));
  EXPECT_EQ(node.cores, (std::vector<int>{1, 3, 5}));
  EXPECT_FALSE(node.cgroup_cpu_limit.has_value());
  EXPECT_EQ(node.memory_mb, 64u * 1024);
}

TEST(Resources, CgroupV2QuotaCutsCoresRoundingDown) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/job/step\n");
  write_file(dir / "cgroup/job/step/cpu.max", "250000 100000\n");  // 2.5 cores
  write_file(dir / "cgroup/job/step/memory.max", "8589934592\n");   // 8 GiB
  const auto node = detect_node_resources(fake(dir, {0, 1, 2, 3, 4, 5, 6, 7}));
  ASSERT_TRUE(node.cgroup_cpu_limit.has_value());
  EXPECT_DOUBLE_EQ(*node.cgroup_cpu_limit, 2.5);
  EXPECT_EQ(node.core_count(), 2);
  EXPECT_EQ(node.memory_mb, 8192u);
}

TEST(Resources, CgroupV2AncestorLimitApplies) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/a/b\n");
  write_file(dir / "cgroup/a/b/cpu.max", "max 100000\n");
  write_file(dir / "cgroup/a/cpu.max", "300000 100000\n");
  EXPECT_EQ(detect_node_resources(fake(dir, {0, 1, 2, 3, 4, 5})).core_count(), 3);
}

TEST(Resources, CgroupV2UnlimitedKeepsAffinity) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/\n");
  write_file(dir / "cgroup/cpu.max", "max 100000\n");
  write_file(dir / "cgroup/memory.max", "max\n");
  const auto node = detect_node_resources(fake(dir, {0, 1, 2, 3}));
  EXPECT_EQ(node.core_count(), 4);
  EXPECT_EQ(node.memory_mb, 64u * 1024);
}

TEST(Resources, CgroupV1CfsQuota) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "4:cpu,cpuacct:/slurm/job1\n3:memory:/slurm/job1\n");
  write_file(dir / "cgroup/cpu,cpuacct/slurm/job1/cpu.cfs_quota_us", "150000\n");
  write_file(dir / "cgroup/cpu,cpuacct/slurm/job1/cpu.cfs_period_us", "100000\n");
  write_file(dir / "cgroup/memory/slurm/job1/memory.limit_in_bytes", "1073741824\n");
  const auto node = detect_node_resources(fake(dir, {0, 1, 2, 3}));
  EXPECT_EQ(node.core_count(), 1);
  EXPECT_EQ(node.memory_mb, 1024u);
}

TEST(Resources, CgroupV1UnlimitedQuota) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "4:cpu,cpuacct:/\n");
  write_file(dir / "cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  write_file(dir / "cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(detect_node_resources(fake(dir, {0, 1, 2})).core_count(), 3);
}

TEST(Resources, QuotaBelowOneCoreStillGivesOne) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/\n");
  write_file(dir / "cgroup/cpu.max", "50000 100000\n");
  EXPECT_EQ(detect_node_resources(fake(dir, {0, 1})).core_count(), 1);
}

TEST(Resources, RequestedCoresOverride) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/\n");
  auto probe = fake(dir, {0, 1, 2, 3});
  probe.requested_cores = 2;
  EXPECT_EQ(detect_node_resources(probe).cores, (std::vector<int>{0, 1}));
}

TEST(Resources, ZeroCoresIsAnErrorNamingIt) {
  TempDir dir;
  auto probe = fake(dir, {0, 1});
  probe.requested_cores = 0;
  try {
    detect_node_resources(probe);
    FAIL() << "expected an error";
  } catch (const packtrain::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--cores must be at least 1"), std::string::npos) << e.what();
  }
}

TEST(Resources, MoreCoresThanUsableIsAnErrorNamingBothNumbers) {
  TempDir dir;
  auto probe = fake(dir, {0, 1});
  probe.requested_cores = 3;
  try {
    detect_node_resources(probe);
    FAIL() << "expected an error";
  } catch (const packtrain::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--cores 3"), std::string::npos) << what;
    EXPECT_NE(what.find("2 usable"), std::string::npos) << what;
  }
}

TEST(Resources, RealMachineHasAtLeastOneCore) {
  const auto node = detect_node_resources();
  EXPECT_GE(node.core_count(), 1);
  EXPECT_GT(node.memory_mb, 0u);
  EXPECT_TRUE(node.gpus.empty());
}

// Ranks on one node (MPI) that each found every core divide them, in
// contiguous blocks, none shared.
TEST(NodeShare, RanksThatSeeTheSameCoresDivideThemWithoutOverlap) {
  using packtrain::share_node_cores;
  EXPECT_EQ(share_node_cores({{0, 1}, {0, 1}}), (std::vector<std::vector<int>>{{0}, {1}}));
  EXPECT_EQ(share_node_cores({{0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}}), (std::vector<std::vector<int>>{{0, 1}, {2, 3, 4}}));
  EXPECT_EQ(share_node_cores({{3, 1, 2, 0}, {0, 1, 2, 3}, {0, 1, 2, 3}}),
            (std::vector<std::vector<int>>{{0}, {1}, {2, 3}}));
  EXPECT_EQ(share_node_cores({{0, 1, 2, 3}}), (std::vector<std::vector<int>>{{0, 1, 2, 3}}));
}

// mpirun --bind-to core (or socket) already gave each rank its own cores:
// they are kept; cores two masks share go to the first rank only.
TEST(NodeShare, RanksBoundToTheirOwnCoresKeepThemAndOverlapsGoToOneRank) {
  using packtrain::share_node_cores;
  EXPECT_EQ(share_node_cores({{0}, {1}}), (std::vector<std::vector<int>>{{0}, {1}}));
  EXPECT_EQ(share_node_cores({{0, 1}, {0, 1}, {2, 3}, {2, 3}}), (std::vector<std::vector<int>>{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(share_node_cores({{0, 1, 2}, {2, 3}}), (std::vector<std::vector<int>>{{0, 1, 2}, {3}}));
}

TEST(NodeShare, FewerCoresThanRanksIsAnErrorNamingBothCounts) {
  try {
    packtrain::share_node_cores({{0, 1}, {0, 1}, {0, 1}, {0, 1}});
    FAIL() << "expected an error";
  } catch (const packtrain::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("2 usable core(s) for 4 processes"), std::string::npos) << what;
    EXPECT_NE(what.find("at most 2 rank(s) per node"), std::string::npos) << what;
  }
}

// --cores counts within the process's share, and the node's memory is divided.
TEST(NodeShare, CoresAndMemoryCountWithinTheShare) {
  TempDir dir;
  write_file(dir / "proc_self_cgroup", "0::/\n");
  auto probe = fake(dir, {0, 1, 2, 3});
  probe.share = [](const std::vector<int>& usable) {
    return packtrain::NodeShare{.cores = packtrain::share_node_cores({usable, usable})[1], .processes = 2};
  };
  auto node = detect_node_resources(probe);
  EXPECT_EQ(node.cores, (std::vector<int>{2, 3}));
  EXPECT_EQ(node.memory_mb, 32u * 1024u);
  probe.requested_cores = 1;
  EXPECT_EQ(detect_node_resources(probe).cores, (std::vector<int>{2}));
  probe.requested_cores = 3;
  try {
    detect_node_resources(probe);
    FAIL() << "expected an error";
  } catch (const packtrain::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--cores 3 is more than the 2 core(s) this process has"), std::string::npos)
        << e.what();
  }
}

// --oversubscribe: more processes than cores each get one, spread evenly,
// and the cores are never refused.
TEST(NodeShare, OversubscribedProcessesShareCoresEvenly) {
  using packtrain::share_node_cores;
  EXPECT_EQ(share_node_cores({{0, 1}, {0, 1}, {0, 1}, {0, 1}}, true),
            (std::vector<std::vector<int>>{{0}, {0}, {1}, {1}}));
  EXPECT_EQ(share_node_cores({{0, 1}, {0, 1}, {0, 1}}, true), (std::vector<std::vector<int>>{{0}, {0}, {1}}));
  // Enough cores: the same shares as without it.
  EXPECT_EQ(share_node_cores({{0, 1, 2, 3}, {0, 1, 2, 3}}, true), share_node_cores({{0, 1, 2, 3}, {0, 1, 2, 3}}));
}
