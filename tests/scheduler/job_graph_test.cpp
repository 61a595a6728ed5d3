// The job graph on its own: what happened in, what changed out. No
// threads, no runner.
#include <packtrain/scheduler/job_graph.hpp>

#include <gtest/gtest.h>

#include <utility>
#include <vector>

using namespace packtrain;

TEST(JobGraph, ReadyJobsComeLongestFirstAndDependentsWhenTheirDependencyIsDone) {
  // 0 -> 2 <- 1, and 3 on its own.
  JobGraph graph({{.cost = 1}, {.cost = 5}, {.after = {0, 1}, .cost = 9}, {.cost = 3}});
  EXPECT_EQ(graph.ready(), (std::vector<int>{1, 3, 0}));
  graph.start(0);
  graph.start(1);
  EXPECT_TRUE(graph.end(0, JobStatus::done, true).released.empty());  // 2 still waits for 1
  EXPECT_EQ(graph.end(1, JobStatus::done, true).released, (std::vector<int>{2}));
  EXPECT_EQ(graph.ready(), (std::vector<int>{2, 3}));
  EXPECT_EQ(graph.ended(), 2);
  EXPECT_FALSE(graph.all_ended());
}

TEST(JobGraph, AFailedJobIsRetriedWhileAttemptsRemainAndNotOnceAStopWasAsked) {
  JobGraph graph({{.retries = 2}, {.retries = 2}});
  EXPECT_EQ(graph.start(0), 1);
  EXPECT_TRUE(graph.end(0, JobStatus::failed, true).retried);
  EXPECT_EQ(graph.start(0), 2);
  EXPECT_TRUE(graph.end(0, JobStatus::failed, true).retried);
  EXPECT_EQ(graph.start(0), 3);
  EXPECT_FALSE(graph.end(0, JobStatus::failed, true).retried);  // out of attempts
  EXPECT_EQ(graph.status(0), JobStatus::failed);

  graph.start(1);
  EXPECT_FALSE(graph.end(1, JobStatus::failed, /*may_retry=*/false).retried);
  EXPECT_TRUE(graph.all_ended());
}

TEST(JobGraph, AJobThatIsNotDoneSkipsItsDependentsAndTheirs) {
  // 0 -> 1 -> 2, 0 -> 3.
  JobGraph graph({{}, {.after = {0}}, {.after = {1}}, {.after = {0}}});
  graph.start(0);
  const auto ended = graph.end(0, JobStatus::diverged, true);
  EXPECT_EQ(ended.skipped, (std::vector<std::pair<int, int>>{{1, 0}, {2, 1}, {3, 0}}));
  EXPECT_EQ(graph.status(2), JobStatus::skipped);
  EXPECT_TRUE(graph.all_ended());
  EXPECT_TRUE(graph.ready().empty());
}

TEST(JobGraph, JobsDoneBeforeCountAsEndedAndHoldNothingBack) {
  JobGraph graph({{.done_before = true}, {.after = {0}}});
  EXPECT_EQ(graph.ended(), 1);
  EXPECT_EQ(graph.ready(), (std::vector<int>{1}));
}

TEST(JobGraph, AJobThatCrashedBeforeIsEndedAndSkipsItsDependentsFromTheStart) {
  // 0 crashed before; 0 -> 1 -> 2; 3 free; 4 waits for 3.
  JobGraph graph({{.crashed_before = true}, {.after = {0}}, {.after = {1}}, {}, {.after = {3}}});
  EXPECT_EQ(graph.status(0), JobStatus::crashed);
  EXPECT_EQ(graph.skipped_at_start(), (std::vector<std::pair<int, int>>{{1, 0}, {2, 1}}));
  EXPECT_EQ(graph.status(1), JobStatus::skipped);
  EXPECT_EQ(graph.status(2), JobStatus::skipped);
  EXPECT_EQ(graph.ended(), 3);
  EXPECT_EQ(graph.ready(), (std::vector<int>{3}));
  graph.start(3);
  EXPECT_EQ(graph.end(3, JobStatus::done, true).released, (std::vector<int>{4}));
}

TEST(JobGraph, AnEndFromElsewhereIsIgnoredForAJobRunningHereOrEnded) {
  JobGraph graph({{}, {}, {.after = {1}}});
  graph.start(0);
  EXPECT_FALSE(graph.end_elsewhere(0, JobStatus::done));
  const auto ended = graph.end_elsewhere(1, JobStatus::done);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->released, (std::vector<int>{2}));
  EXPECT_FALSE(graph.end_elsewhere(1, JobStatus::failed));
  EXPECT_EQ(graph.status(1), JobStatus::done);
  EXPECT_EQ(graph.ready(), (std::vector<int>{2}));
}

TEST(JobGraph, GivingAwayHandsOverEveryOtherReadyJobAndTakingMakesThemReady) {
  JobGraph graph({{.cost = 4}, {.cost = 3}, {.cost = 2}, {.cost = 1}});
  const auto given = graph.give_away();
  EXPECT_EQ(given, (std::vector<int>{1, 3}));
  EXPECT_EQ(graph.ready(), (std::vector<int>{0, 2}));
  EXPECT_EQ(graph.take(given), 2);
  EXPECT_EQ(graph.ready(), (std::vector<int>{0, 1, 2, 3}));
}

TEST(JobGraph, AJobNotOwnedHereIsNotReadyHereUntilTaken) {
  JobGraph graph({{}, {.owned = false}});
  EXPECT_EQ(graph.ready(), (std::vector<int>{0}));
  EXPECT_EQ(graph.take({1}), 1);
  EXPECT_EQ(graph.ready(), (std::vector<int>{0, 1}));
}

TEST(JobGraph, AFollowerStartsOnceTheJobItFollowsHasEndedHoweverItEnded) {
  // 1 follows 0 (order only); 3 depends on 2 and 4 follows 3.
  JobGraph graph({{.cost = 1}, {.follows = {0}, .cost = 9}, {}, {.after = {2}}, {.follows = {3}}});
  EXPECT_EQ(graph.ready(), (std::vector<int>{0, 2}));  // 1 waits for 0 although it is longer
  graph.start(0);
  const auto ended = graph.end(0, JobStatus::failed, /*may_retry=*/false);
  EXPECT_EQ(ended.released, (std::vector<int>{1}));  // a failure releases a follower
  EXPECT_TRUE(ended.skipped.empty());
  graph.start(2);
  const auto second = graph.end(2, JobStatus::diverged, true);
  EXPECT_EQ(second.skipped, (std::vector<std::pair<int, int>>{{3, 2}}));
  EXPECT_EQ(second.released, (std::vector<int>{4}));  // a skipped job releases its follower too
  EXPECT_EQ(graph.ready(), (std::vector<int>{1, 4}));
}

TEST(JobGraph, FollowingAJobDoneBeforeWaitsForNothing) {
  JobGraph graph({{.done_before = true}, {.follows = {0}}, {.crashed_before = true}, {.follows = {2}}});
  EXPECT_EQ(graph.ready(), (std::vector<int>{1, 3}));
}

TEST(JobGraph, PinnedJobsAreNeverGivenAway) {
  JobGraph graph({{.cost = 6, .pinned = true}, {.cost = 5}, {.cost = 4, .pinned = true}, {.cost = 3}, {.cost = 2}});
  // Of the unpinned 1, 3, 4 every other one goes, starting with the second.
  EXPECT_EQ(graph.give_away(), (std::vector<int>{3}));
  EXPECT_EQ(graph.ready(), (std::vector<int>{0, 1, 2, 4}));
}
