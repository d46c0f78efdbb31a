// quotum::Mutex, CompactMutex, SharedMutex and CondVar (under the tsan preset, TSan checks
// that they order what they guard).
#include "quotum/base/mutex.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace quotum {
namespace {

TEST(MutexTest, ExclusiveAndSharedLocksGuardACounter) {
  Mutex mu;
  SharedMutex shared_mu;
  int a = 0, b = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < 1000; ++n) {
        {
          MutexLock lock(&mu);
          ++a;
        }
        {
          MutexLock lock(&shared_mu);
          ++b;
        }
        ReaderMutexLock lock(&shared_mu);
        EXPECT_GE(b, 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  MutexLock lock(&mu);
  EXPECT_EQ(a, 4000);
  ReaderMutexLock reader(&shared_mu);
  EXPECT_EQ(b, 4000);
}

// Four threads on two cores contend often enough to take the futex path.
TEST(MutexTest, ACompactMutexGuardsACounterUnderContention) {
  CompactMutex mu;
  int64_t sum = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < 100000; ++n) {
        MutexLock lock(&mu);
        sum += 1;
      }
    });
  }
  for (auto& t : threads) t.join();
  MutexLock lock(&mu);
  EXPECT_EQ(sum, 400000);
  EXPECT_EQ(sizeof(CompactMutex), 4u);
}

TEST(MutexTest, SignalWakesAWaiterAndTimeoutsReportThemselves) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  {
    MutexLock lock(&mu);
    EXPECT_TRUE(cv.WaitWithTimeout(&mu, absl::Milliseconds(1)));
  }
  std::thread signaller([&] {
    {
      MutexLock lock(&mu);
      ready = true;
    }
    cv.Signal();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
  }
  signaller.join();
}

}  // namespace
}  // namespace quotum
