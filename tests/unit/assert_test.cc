// CKPT_ASSERT stays on in release builds, reports one line with the
// condition, place and context, and evaluates its context only on failure.
#include <gtest/gtest.h>

#include <ckpt/img/assert.h>

namespace {

int context_evaluations = 0;
int counted() { return ++context_evaluations; }

TEST(CkptAssert, PassingCheckDoesNotEvaluateItsContext) {
  context_evaluations = 0;
  CKPT_ASSERT(1 + 1 == 2) << "never built: " << counted();
  EXPECT_EQ(context_evaluations, 0);
}

TEST(CkptAssert, IsOneStatementUnderAnUnbracedIfElse) {
  int branch = 0;
  if (branch == 0)
    CKPT_ASSERT(true) << "x";
  else
    branch = 2;
  EXPECT_EQ(branch, 0);
}

TEST(CkptAssertDeathTest, FailingCheckAbortsWithConditionPlaceAndContext) {
  int planned = 4096, written = 4000;
  EXPECT_DEATH({ CKPT_ASSERT(written == planned) << "wrote " << written << " of " << planned; },
               "internal error: .*assert_test.cc:[0-9]+: CKPT_ASSERT\\(written == planned\\) failed: wrote 4000 of 4096");
}

}  // namespace
