#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>

#include "gtest/gtest.h"
#include "quotum/config/config.h"

namespace quotum::testing {

/// examples/quotum.toml with `extra` TOML appended; fails the test if it does not load.
inline std::shared_ptr<const config::Config> LoadExampleWith(std::string_view extra) {
  std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf() << extra;
  auto loaded = config::LoadString(text.str(), "test.toml");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? *loaded : nullptr;
}

}  // namespace quotum::testing
