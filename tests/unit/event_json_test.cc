// The event's webhook JSON: the common keys, the typed fields, and what
// happens to a number that is not one.
#include "quotum/notify/event_json.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/time/time.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"

namespace quotum::notify {
namespace {

quotum::engine::EventRecord Threshold() {
  quotum::engine::EventRecord e;
  e.id = "evt_0a1b";
  e.type = "threshold.reached";
  e.tenant_id = "t_1";
  e.at = absl::FromUnixSeconds(1714564800) + absl::Milliseconds(750);  // 2024-05-01T12:00:00.750Z
  e.subject = "messages";
  e.detail = "Tenant t_1 used 80% of \"messages\".";
  e.fields = {{"meter", "messages", false},
              {"value", "800", true},
              {"limit", "18446744073709551615", true},
              {"delta", "-3", true},
              {"ratio", "0.8", true}};
  return e;
}

TEST(EventJsonTest, CommonKeysThenFieldsInOrder) {
  EXPECT_EQ(EventJson(Threshold()),
            R"({"id":"evt_0a1b","type":"threshold.reached","tenant":"t_1",)"
            R"("at":"2024-05-01T12:00:00Z","subject":"messages",)"
            R"("detail":"Tenant t_1 used 80% of \"messages\".","meter":"messages","value":800,)"
            R"("limit":18446744073709551615,"delta":-3,"ratio":"0.8"})");
}

TEST(EventJsonTest, NumbersAreIntegersAndUnparsableOnesStrings) {
  quotum::engine::EventRecord e = Threshold();
  e.fields = {{"a", "42", true},
              {"b", "42", false},
              {"c", " 42", true},
              {"d", "+42", true},
              {"e", "", true},
              {"f", "4e2", true},
              {"g", "18446744073709551616", true},
              {"h", "-9223372036854775808", true}};
  boost::json::object o = boost::json::parse(EventJson(e)).as_object();
  EXPECT_EQ(o.at("a").as_int64(), 42);
  EXPECT_EQ(o.at("b").as_string(), "42");
  EXPECT_EQ(o.at("c").as_string(), " 42");
  EXPECT_EQ(o.at("d").as_string(), "+42");
  EXPECT_EQ(o.at("e").as_string(), "");
  EXPECT_EQ(o.at("f").as_string(), "4e2");
  EXPECT_EQ(o.at("g").as_string(), "18446744073709551616");
  EXPECT_EQ(o.at("h").as_int64(), INT64_MIN);
}

TEST(EventJsonTest, AFieldCannotReplaceACommonKeyOrAnEarlierField) {
  quotum::engine::EventRecord e = Threshold();
  e.fields = {{"id", "evt_forged", false}, {"x", "1", true}, {"x", "2", true}};
  boost::json::object o = boost::json::parse(EventJson(e)).as_object();
  EXPECT_EQ(o.at("id").as_string(), "evt_0a1b");
  EXPECT_EQ(o.at("x").as_int64(), 1);
  EXPECT_EQ(o.size(), 7u);
}

TEST(EventJsonTest, JsonFieldsAreNestedAndBrokenOnesStayText) {
  quotum::engine::EventRecord e = Threshold();
  e.fields = {{"totals", R"({"messages_sent":{"total":5}})", false, true},
              {"alerts", "[]", false, true},
              {"forecast", "null", false, true},
              {"broken", "{\"a\":", false, true}};
  boost::json::object o = boost::json::parse(EventJson(e)).as_object();
  EXPECT_EQ(o.at("totals").at("messages_sent").at("total").as_int64(), 5);
  EXPECT_TRUE(o.at("alerts").as_array().empty());
  EXPECT_TRUE(o.at("forecast").is_null());
  EXPECT_EQ(o.at("broken").as_string(), "{\"a\":");
}

TEST(EventJsonTest, EscapesTextAndKeepsUtf8) {
  quotum::engine::EventRecord e = Threshold();
  e.fields.clear();
  e.detail = "quote \" backslash \\ caf\xc3\xa9";
  boost::json::object o = boost::json::parse(EventJson(e)).as_object();
  EXPECT_EQ(o.at("detail").as_string(), e.detail);
  EXPECT_EQ(o.size(), 6u);
}

}  // namespace
}  // namespace quotum::notify
