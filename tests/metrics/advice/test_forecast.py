"""metrics.advice.forecast: Holt-Winters recovers a trend with a daily season; shorter histories fall back."""
from __future__ import annotations

import numpy as np

from metrics.advice.forecast import forecast

HOURS = np.arange(14 * 24 + 24)
TRUE = 400 + 2.0 * HOURS + 150 * np.sin(2 * np.pi * HOURS / 24)  # requests per hour: trend and daily season


def test_holt_winters_recovers_a_trend_and_daily_season_within_five_percent():
    noisy = TRUE + np.random.default_rng(7).normal(0, 15, len(TRUE))
    result = forecast(noisy[:-24], horizon=24)
    assert result.model == "holt_winters"
    error = np.abs(result.values - TRUE[-24:]) / TRUE[-24:]
    assert error.mean() < 0.05 and error.max() < 0.10, (error.mean(), error.max())
    assert abs(result.values.max() - TRUE[-24:].max()) / TRUE[-24:].max() < 0.05


def test_the_fitted_parameters_follow_the_series():
    """A steady season is fitted with little seasonal smoothing; a season that changes shape, with more."""
    steady = forecast(TRUE[:-24])
    noisy = TRUE + np.random.default_rng(3).normal(0, 60, len(TRUE))
    assert steady.rmse < forecast(noisy[:-24]).rmse
    assert set(steady.params) == {"alpha", "beta", "gamma"}


def test_a_day_of_history_falls_back_to_holts_linear_trend():
    result = forecast(100 + 10 * np.arange(30.0), horizon=3)
    assert result.model == "holt"
    assert np.allclose(result.values, [400, 410, 420], rtol=0.02)


def test_a_few_hours_fall_back_to_their_mean_and_never_below_zero():
    assert forecast([10, 20, 30], horizon=2).values.tolist() == [20.0, 20.0]
    assert forecast([0.0] * 60).values.min() == 0.0
