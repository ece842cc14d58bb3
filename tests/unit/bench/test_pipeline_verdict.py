"""The pipeline benchmark's rule for a sustained rate: a stage's lag bounded over a step."""

from __future__ import annotations

from bench._pipeline_verdict import LagSeries, judge, percentile, slope

JUDGE = {"settle_s": 5.0, "max_behind_s": 3.0, "max_growth_frac": 0.05, "floor_msgs": 500}


def test_a_lag_that_jitters_around_a_level_is_bounded() -> None:
    # Arrange: 2,000 msgs/s in, commits every second leave 0-2,000 behind
    points = tuple((t * 2.0, 1500 + (700 if t % 2 else -700)) for t in range(13))

    # Act
    verdict = judge(LagSeries("streams", points, 2000.0), **JUDGE)

    # Assert
    assert verdict.bounded
    assert abs(verdict.growth_per_s) < 100


def test_a_lag_growing_at_a_fifth_of_the_input_is_not_bounded() -> None:
    points = tuple((t * 2.0, 400 * t * 2) for t in range(13))  # 2,000 in, 1,600 done: +400/s

    verdict = judge(LagSeries("streams", points, 2000.0), **JUDGE)

    assert not verdict.bounded
    assert verdict.growth_per_s == 400.0
    assert verdict.final_lag == 9600


def test_a_backlog_draining_after_the_settle_time_is_bounded() -> None:
    points = ((0.0, 9000), (2.0, 8000), (6.0, 3000), (10.0, 800), (14.0, 300), (18.0, 200))

    assert judge(LagSeries("sink", points, 3000.0), **JUDGE).bounded


def test_a_backlog_still_draining_through_the_step_is_bounded() -> None:
    # left by the previous step: high median, falling fast, low at the end
    points = ((8.0, 9000), (11.0, 7000), (14.0, 5000), (17.0, 2500), (20.0, 800))

    verdict = judge(LagSeries("streams", points, 460.0), **JUDGE)

    assert verdict.bounded
    assert verdict.behind_s > 3.0


def test_a_steady_but_large_backlog_is_not_bounded() -> None:
    # constant 20 s behind: keeping pace now, but not keeping up
    points = tuple((t * 2.0, 20_000) for t in range(13))

    verdict = judge(LagSeries("sink", points, 1000.0), **JUDGE)

    assert not verdict.bounded
    assert verdict.growth_per_s == 0.0


def test_one_high_sample_of_a_batching_consumer_does_not_fail_the_step() -> None:
    # a sink committing after each batch: 1 s of input behind, one sample caught before a commit
    points = ((0.0, 300), (2.5, 250), (5.0, 300), (7.5, 280), (10.0, 320), (12.5, 260), (15.0, 290), (17.5, 900))

    verdict = judge(LagSeries("sink", points, 250.0), **JUDGE)

    assert verdict.bounded
    assert verdict.final_lag == 900


def test_a_quiet_stage_below_the_floor_is_bounded() -> None:
    points = ((0.0, 0), (6.0, 3), (12.0, 1), (18.0, 4))

    assert judge(LagSeries("executor", points, 0.5), **JUDGE).bounded


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == 2.0
    assert slope([(1.0, 7.0)]) == 0.0


def test_percentile_is_an_observed_value_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
