"""Test files of each language read line by line (TypeScript, Java, Kotlin, Rust), with the test cases each defines.

Each ``*_CASES`` lists ``(line, scope, name)`` of the tests the language's runner would run, in file order:
the known answer for :func:`collectors.testcases.find_test_cases`.
"""

from __future__ import annotations

TYPESCRIPT = """\
import { describe, it, expect, test } from "vitest";

// it("a commented-out test", () => {});
describe("cart", () => {
  it("adds an item", () => {
    expect(/x/.test("x")).toBe(true);
  });

  describe('totals', function () {
    test(`sums ${"prices"}`, async () => {});
    it.only("rounds half up", () => {});
    it.each([1, 2])("each row %s is not counted", (n) => {});
    it.todo("a todo is not counted");
  });

  it.skip("a skipped test still exists", () => {});
});

describe("uses a named suite", suite);

test("at the top", () => { expect(1).toBe(1) });
"""
TYPESCRIPT_CASES = [
    (5, "cart", "adds an item"), (10, "cart > totals", 'sums ${"prices"}'), (11, "cart > totals", "rounds half up"),
    (16, "cart", "a skipped test still exists"), (21, None, "at the top"),
]

JAVA = """\
package shop;

import org.junit.jupiter.api.*;

class OrderServiceTest
{
    @Test
    void placesAnOrder() {
        String s = "class Decoy { @Test void no() {} }";
    }

    @Test(timeout = 100) public void withArguments() throws Exception {
    }

    @org.junit.jupiter.api.Test
    @DisplayName("a (displayed) name")
    void qualified() {}

    // @Test
    void helper() {}

    @Nested
    class WhenEmpty {
        @ParameterizedTest
        @ValueSource(ints = {1, 2})
        void parametrisedOnce(int n) {}
    }

    @TestFactory
    Stream<DynamicTest> factoryIsNotATest() { return null; }

    @RepeatedTest(3)
    void repeatedOnce() {}
}
"""
JAVA_CASES = [
    (8, "OrderServiceTest", "placesAnOrder"), (12, "OrderServiceTest", "withArguments"),
    (17, "OrderServiceTest", "qualified"), (26, "OrderServiceTest.WhenEmpty", "parametrisedOnce"),
    (33, "OrderServiceTest", "repeatedOnce"),
]

KOTLIN = """\
class CartTest {
    @Test
    fun `adds an item`() {}

    @Test fun removes() = runTest { }

    fun helper() {}
}
"""
KOTLIN_CASES = [(3, "CartTest", "adds an item"), (5, "CartTest", "removes")]

RUST = """\
pub fn total(xs: &[i32]) -> i32 { xs.iter().sum() }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums() { assert_eq!(total(&[1, 2]), 3); }

    #[test]
    #[should_panic]
    fn panics() { panic!() }

    #[tokio::test(flavor = "multi_thread")]
    async fn runs_async() {}

    // #[test]
    fn not_a_test() {}

    #[test_case(1)]
    fn test_case_is_another_macro(n: i32) {}
}
"""
RUST_CASES = [(8, None, "sums"), (12, None, "panics"), (15, None, "runs_async")]
