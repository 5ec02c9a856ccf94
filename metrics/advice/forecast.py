"""Forecasting a route's load from its hourly series: Holt-Winters with an additive trend and an additive daily
season, its smoothing parameters fitted on the history (a grid search over the one-step-ahead squared errors,
every candidate run at once as numpy vectors); Holt's linear trend with less than two days of history, the mean
with less than six hours. Small and ours, in numpy (already a dependency), rather than statsmodels and scipy."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

SEASON = 24  # hours in the daily season
MIN_SEASONAL = 2 * SEASON  # Holt-Winters needs two whole seasons to start
MIN_TREND = 6  # Holt's linear trend needs a few points
ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 0.95)
BETAS = (0.0, 0.01, 0.03, 0.1, 0.2, 0.4)
GAMMAS = (0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8)


@dataclass(frozen=True)
class Forecast:
    """The next `len(values)` points (never below 0), the model that made them and its fitted parameters."""

    model: str  # "holt_winters", "holt" or "mean"
    values: np.ndarray
    params: dict[str, float]
    history: int
    rmse: float  # of the one-step-ahead errors on the history (0 for "mean")


def forecast(history: np.ndarray | list[float], horizon: int = SEASON, season: int = SEASON) -> Forecast:
    y = np.asarray(history, dtype=float)
    if len(y) >= 2 * season:
        return _holt_winters(y, horizon, season)
    if len(y) >= MIN_TREND:
        return _holt(y, horizon)
    mean = float(y.mean()) if len(y) else 0.0
    return Forecast("mean", np.full(horizon, max(mean, 0.0)), {}, len(y), 0.0)


def _grid(*axes: tuple[float, ...]) -> list[np.ndarray]:
    columns = np.array(list(product(*axes)), dtype=float)
    return [columns[:, index] for index in range(len(axes))]


def _hw_run(y: np.ndarray, season: int, alpha: np.ndarray, beta: np.ndarray,
            gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run every (alpha, beta, gamma) candidate over the series: final level, trend, seasonal slots and the sum
    of squared one-step-ahead errors. The first season only starts the state; errors count from the second."""
    first, second = y[:season].mean(), y[season:2 * season].mean()
    count = len(alpha)
    level = np.full(count, first)
    trend = np.full(count, (second - first) / season)
    seasonal = np.tile(y[:season] - first, (count, 1))
    sse = np.zeros(count)
    for t in range(season, len(y)):
        slot = t % season
        previous = seasonal[:, slot]
        error = y[t] - (level + trend + previous)
        sse += error * error
        new_level = alpha * (y[t] - previous) + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        seasonal[:, slot] = gamma * (y[t] - new_level) + (1 - gamma) * previous
        level = new_level
    return level, trend, seasonal, sse


def _refined(values: tuple[float, ...], best: float) -> tuple[float, ...]:
    """A finer grid around the best value of a coarse one, within [0, 1]."""
    step = min((abs(a - b) for a, b in zip(values, values[1:], strict=False)), default=0.1) / 2
    return tuple(sorted({min(1.0, max(0.0, best + k * step)) for k in (-1.0, -0.5, 0.0, 0.5, 1.0)}))


def _holt_winters(y: np.ndarray, horizon: int, season: int) -> Forecast:
    alpha, beta, gamma = _grid(ALPHAS, BETAS, GAMMAS)
    *_, sse = _hw_run(y, season, alpha, beta, gamma)
    best = int(np.argmin(sse))
    alpha, beta, gamma = _grid(_refined(ALPHAS, alpha[best]), _refined(BETAS, beta[best]),
                               _refined(GAMMAS, gamma[best]))
    level, trend, seasonal, sse = _hw_run(y, season, alpha, beta, gamma)
    best = int(np.argmin(sse))
    steps = np.arange(1, horizon + 1)
    slots = (len(y) + steps - 1) % season
    values = level[best] + steps * trend[best] + seasonal[best, slots]
    params = {"alpha": round(float(alpha[best]), 3), "beta": round(float(beta[best]), 3),
              "gamma": round(float(gamma[best]), 3)}
    rmse = float(np.sqrt(sse[best] / (len(y) - season)))
    return Forecast("holt_winters", np.maximum(values, 0.0), params, len(y), rmse)


def _holt(y: np.ndarray, horizon: int) -> Forecast:
    alpha, beta = _grid(ALPHAS, BETAS)
    level = np.full(len(alpha), y[0])
    trend = np.full(len(alpha), y[1] - y[0])
    sse = np.zeros(len(alpha))
    for t in range(1, len(y)):
        error = y[t] - (level + trend)
        sse += error * error
        new_level = alpha * y[t] + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        level = new_level
    best = int(np.argmin(sse))
    values = level[best] + np.arange(1, horizon + 1) * trend[best]
    return Forecast("holt", np.maximum(values, 0.0),
                    {"alpha": round(float(alpha[best]), 3), "beta": round(float(beta[best]), 3)}, len(y),
                    float(np.sqrt(sse[best] / (len(y) - 1))))
