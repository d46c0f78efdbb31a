// RFC 4180 records as the CSV export writes them.
#include "quotum/report/csv.h"

#include "gtest/gtest.h"

namespace quotum::report {
namespace {

TEST(Csv, PlainFieldsAreJoinedByCommasAndEndWithCrlf) {
  std::string out;
  AppendCsvRecord(out, {"date", "meter", "channel", "units"});
  AppendCsvRecord(out, {"2026-11-23", "messages_sent", "", "5"});
  EXPECT_EQ(out, "date,meter,channel,units\r\n2026-11-23,messages_sent,,5\r\n");
}

TEST(Csv, FieldsWithCommasQuotesOrLineBreaksAreQuoted) {
  std::string out;
  AppendCsvRecord(out, {"a,b", "say \"hi\"", "two\nlines", "cr\rhere", "plain"});
  EXPECT_EQ(out, "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",plain\r\n");
}

}  // namespace
}  // namespace quotum::report
