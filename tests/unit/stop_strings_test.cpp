// Stop strings are found in the generated text wherever the token pieces
// split them.
#include "core/stop_strings.h"

#include <gtest/gtest.h>

namespace bitmamba {
namespace {

StopStrings make(std::vector<std::string> stops) {
  StopStrings s;
  EXPECT_TRUE(StopStrings::make(std::move(stops), &s).ok());
  return s;
}

TEST(StopStrings, FoundOnThePieceThatCompletesIt) {
  StopStrings s = make({"\nQuestion:"});
  EXPECT_EQ(s.push("The answer is 4."), -1);
  EXPECT_EQ(s.push("\nQu"), -1);
  EXPECT_EQ(s.push("est"), -1);
  EXPECT_EQ(s.push("ion"), -1);
  EXPECT_EQ(s.push(": next"), 0);
}

TEST(StopStrings, SplitInsideAMultiByteCharacter) {
  StopStrings s = make({"caf\xC3\xA9!"});
  EXPECT_EQ(s.push("a caf\xC3"), -1);
  EXPECT_EQ(s.push("\xA9"), -1);
  EXPECT_EQ(s.push("!"), 0);
}

TEST(StopStrings, FirstGivenWinsWhenSeveralEndInOnePiece) {
  StopStrings s = make({"xyz", "y"});
  EXPECT_EQ(s.push("axyz"), 0);
  StopStrings t = make({"zz", "b"});
  EXPECT_EQ(t.push("a"), -1);
  EXPECT_EQ(t.push("b"), 1);
}

TEST(StopStrings, NoneGivenNeverStops) {
  StopStrings s = make({});
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.push("anything"), -1);
}

TEST(StopStrings, BadListsAreInvalidArguments) {
  StopStrings s;
  EXPECT_EQ(StopStrings::make({"ok", ""}, &s).code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(StopStrings::make(std::vector<std::string>(StopStrings::kMaxStrings + 1, "a"), &s).code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(StopStrings::make({std::string(StopStrings::kMaxBytes + 1, 'a')}, &s).code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace bitmamba
