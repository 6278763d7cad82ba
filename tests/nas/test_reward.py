import pytest

from nas.reward import HARD, SOFT, reward

T = 400e6


def test_soft_reward_hand_computed():
    # below T: w = alpha = -0.07 -> bonus; above: w = beta = -0.07 -> penalty
    assert reward(0.75, 200e6, T) == pytest.approx(0.75 * 0.5**-0.07)  # 2^0.07 = 1.04971
    assert reward(0.75, 200e6, T) == pytest.approx(0.78728, abs=1e-5)
    assert reward(0.75, 800e6, T) == pytest.approx(0.75 * 2**-0.07)
    assert reward(0.75, 800e6, T) == pytest.approx(0.71448, abs=1e-5)
    assert reward(0.75, T, T) == pytest.approx(0.75)


def test_hard_reward_hand_computed():
    a, b = HARD
    assert reward(0.8, 300e6, T, a, b) == pytest.approx(0.8)  # no bonus under T
    assert reward(0.8, 800e6, T, a, b) == pytest.approx(0.4)  # (2)^-1 penalty over T


def test_soft_defaults():
    assert SOFT == (-0.07, -0.07)


@pytest.mark.parametrize("target", [0, -1, float("nan"), float("inf")])
def test_bad_target(target):
    with pytest.raises(ValueError, match="reward.T"):
        reward(0.5, 1e6, target)


def test_positive_exponent_rejected():
    with pytest.raises(ValueError, match="reward.alpha"):
        reward(0.5, 1e6, T, 0.1, -0.07)
    with pytest.raises(ValueError, match="reward.beta"):
        reward(0.5, 1e6, T, -0.07, 0.5)
