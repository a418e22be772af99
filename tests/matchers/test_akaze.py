from tests.matchers.base import MatcherContract


class TestAKAZE(MatcherContract):
    name = "akaze"
    corner_tolerance = 4.0
