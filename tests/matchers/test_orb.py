from tests.matchers.base import MatcherContract


class TestORB(MatcherContract):
    name = "orb"
    corner_tolerance = 8.0  # ORB keypoints on coarse pyramid levels are rough
    exact_iou = 0.93
