// The kernel tests' main: sets up the execution lane (lane.hpp), then runs GoogleTest.
#include <gtest/gtest.h>

#include <cstdio>

#include "lane.hpp"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // Test discovery (--gtest_list_tests) only lists names: no need to load the emulator.
  if (!GTEST_FLAG_GET(list_tests))
    std::printf("%s\n", sparq::test::install_emulator_lane().c_str());
  return RUN_ALL_TESTS();
}
