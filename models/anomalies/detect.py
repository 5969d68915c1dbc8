"""Causal detection on every series at once: a robust Holt-Winters filter.

Per series the model is Holt-Winters with an additive damped trend and multiplicative
weekday factors (statsmodels' ``ExponentialSmoothing(trend="add", damped_trend=True,
seasonal="mul", seasonal_periods=7)``; the update equations are the same, and a test
checks that with robustness off the predictions equal statsmodels'), extended the way
cost series need:

- robust: each observation enters the state clipped to ``expected ± clip·sigma`` (Gelper,
  Fried & Croux 2010), so an anomaly does not become the new normal by itself; sigma is a
  recursive estimate from residuals clipped the same way, corrected for the clipping;
- month-start fees: day 1 of a month has its own additive term, learnt the first time a
  series meets a day 1 (never alerted that once) and smoothed after; a changed fee seen
  twice in a row becomes the new fee;
- level shifts: ``confirm_days`` consecutive days outside the clip on the same side reset
  the level to the median of those days: the shift alerts, then is normal. A shift often
  changes the weekday profile too (a workload moved in), so the series then re-learns:
  it raises nothing until ``min_history`` days after the shift began, when level, weekday
  factors and scale are estimated again from those days (broader series still alert);
- new series: the state is initialised from the first ``min_history`` days after the first
  non-zero cost (weekday medians, level, MAD scale); no day before that is judged;
- missing days (NaN): the state only ages (trend damped), nothing is judged.

The decision for day ``t`` uses values up to ``t`` only, and the filter is run up to the
last judged day (the data's last day minus the incomplete days), so appending data never
changes an earlier decision. All series advance together, one vector step per day.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from models.anomalies.settings import ModelParams

SEASON_FLOOR = 0.05
EPS = 1e-9


def _huber_variance(c: float) -> float:
    """E[min(Z^2, c^2)] for a standard normal Z: the bias of a Huber-clipped variance."""
    pdf = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    inside = math.erf(c / math.sqrt(2))
    return inside - 2 * c * pdf + c * c * (1 - inside)


@dataclass
class FilterResult:
    expected: np.ndarray  # [S, T] expected cost (NaN where not judged)
    base: np.ndarray  # [S, T] expected cost without the month-start fee
    sigma: np.ndarray  # [S, T] robust scale used for the decision
    z: np.ndarray  # [S, T] (actual - expected) / sigma
    flag: np.ndarray  # [S, T] bool: an anomalous day (direction and day floors applied)
    clean: np.ndarray  # [S, T] the value that entered the state (clipped), NaN if none
    judged_through: int  # last day index judged (-1: none)
    judged_from: np.ndarray  # [S] first judged day index of each series


def hw_update(level: np.ndarray, trend: np.ndarray, season: np.ndarray, y: np.ndarray,
              p: ModelParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Holt-Winters step (additive damped trend, multiplicative season), as statsmodels."""
    lb = level + p.phi * trend
    new_level = p.alpha * y / season + (1 - p.alpha) * lb
    new_trend = p.beta * (new_level - level) + (1 - p.beta) * p.phi * trend
    safe = np.abs(lb) > EPS
    new_season = np.where(safe, p.gamma * y / np.where(safe, lb, 1.0) + (1 - p.gamma) * season,
                          season)
    return new_level, new_trend, new_season


def hw_predictions(y: np.ndarray, level: float, trend: float, seasons: np.ndarray,
                   p: ModelParams) -> np.ndarray:
    """One-step-ahead predictions of the plain (non-robust) filter for one series.

    ``seasons[i]`` is the factor of observation ``i`` for ``i < 7``; used by the test that
    compares the filter with statsmodels.
    """
    lv, tr = np.array([level]), np.array([trend])
    season = np.asarray(seasons, dtype=float).copy()
    out = np.empty(len(y))
    for t, value in enumerate(y):
        k = t % 7
        out[t] = ((lv + p.phi * tr) * season[k])[0]
        lv, tr, s_new = hw_update(lv, tr, season[k:k + 1], np.array([value]), p)
        season[k] = s_new[0]
    return out


def run_filter(
    values: np.ndarray,
    first: np.ndarray,
    weekdays: np.ndarray,
    month_start: np.ndarray,
    *,
    params: ModelParams,
    min_history: int,
    confirm_days: int,
    z_threshold: float,
    direction: str,
    day_floor_money: float,
    day_floor_pct: float,
    judged_through: int,
) -> FilterResult:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _run(values, first, weekdays, month_start, params, min_history, confirm_days,
                    z_threshold, direction, day_floor_money, day_floor_pct, judged_through)


def _run(values: np.ndarray, first: np.ndarray, weekdays: np.ndarray, month_start: np.ndarray,
         p: ModelParams, min_history: int, confirm_days: int, z_threshold: float,
         direction: str, day_floor_money: float, day_floor_pct: float,
         judged_through: int) -> FilterResult:
    n_series, n_days = values.shape
    judged_through = min(judged_through, n_days - 1)
    nan = np.full((n_series, n_days), np.nan)
    expected, base_out, sigma_out, z_out, clean_out = (nan.copy() for _ in range(5))
    flag = np.zeros((n_series, n_days), dtype=bool)
    start = first.astype(np.int64) + min_history

    level = np.zeros(n_series)
    trend = np.zeros(n_series)
    season = np.ones((n_series, 7))
    fee = np.zeros(n_series)
    fee_known = np.zeros(n_series, dtype=bool)
    fee_run = np.zeros(n_series)
    fee_prev = np.zeros(n_series)
    sig = np.full(n_series, p.abs_floor)
    ready = np.zeros(n_series, dtype=bool)
    run_len = np.zeros(n_series, dtype=np.int64)
    run_sign = np.zeros(n_series)
    run_z = np.zeros(n_series)
    buf = np.full((n_series, confirm_days), np.nan)
    relearn_at = np.full(n_series, -1, dtype=np.int64)
    kappa = _huber_variance(p.clip)
    c = p.clip

    for t in range(judged_through + 1):
        rows = np.flatnonzero(start == t)
        if rows.size:
            _initialise(rows, t, values, weekdays, month_start, min_history, p,
                        level, trend, season, fee, fee_known, sig)
            ready[rows] = True
        rows = np.flatnonzero(relearn_at == t)
        if rows.size:
            _initialise(rows, t, values, weekdays, month_start, min_history, p,
                        level, trend, season, fee, fee_known, sig, keep_fee=True)
            relearn_at[rows] = -1
        if not ready.any():
            continue
        y = values[:, t]
        present = ready & ~np.isnan(y)
        k = int(weekdays[t])
        s_k = season[:, k]
        lb = level + p.phi * trend
        base = lb * s_k
        exp_t = base + np.where(fee_known, fee, 0.0) if month_start[t] else base
        exp_t = np.where(base >= 0, np.maximum(exp_t, 0.0), exp_t)
        sg = np.maximum(sig, np.maximum(p.rel_floor * np.abs(exp_t), p.abs_floor))
        r = y - exp_t
        z = r / sg
        rc = np.clip(r, -c * sg, c * sg)
        judge = present & (relearn_at < 0)

        if month_start[t]:
            learn = present & ~fee_known
            fee = np.where(learn, r, fee)
            fee_known = fee_known | learn
            judge &= ~learn
            out = judge & (np.abs(z) > c)
            sign = np.sign(r)
            excess = y - base
            # A changed fee seen a second month in a row is the new fee; when it is the
            # same change as last month it is not an anomaly any more.
            accept = out & (fee_run == sign)
            similar = np.abs(excess - fee_prev) <= np.maximum(c * sg, 0.25 * np.abs(fee_prev))
            judge &= ~(accept & similar)
            fee = np.where(judge & ~out, fee + p.fee_rate * rc, fee)
            fee = np.where(out & ~accept, fee + p.fee_rate * rc, fee)
            fee = np.where(accept, excess, fee)
            fee_prev = np.where(out, excess, fee_prev)
            fee_run = np.where(present & ~learn, np.where(out & ~accept, sign, 0.0), fee_run)
            clean = exp_t + rc
            # The regular state only ages on a fee day.
            level = np.where(ready, lb, level)
            trend = np.where(ready, p.phi * trend, trend)
        else:
            out = present & (np.abs(z) > c)
            sign = np.sign(r)
            cont = out & (run_len > 0) & (sign == run_sign)
            new = out & ~cont
            run_len = np.where(cont, run_len + 1, np.where(new, 1, np.where(present, 0, run_len)))
            run_sign = np.where(new, sign, run_sign)
            run_z = np.where(cont, run_z + z, np.where(new, z, np.where(present, 0.0, run_z)))
            # Evidence over a run of outlying days on one side (Stouffer's sum).
            run_score = np.where(run_len >= 2, np.abs(run_z) / np.sqrt(np.maximum(run_len, 1)),
                                 0.0)
            des = y / s_k
            if new.any():
                buf[new] = np.nan
                buf[new, 0] = des[new]
            if cont.any():
                idx = np.flatnonzero(cont)
                buf[idx, np.minimum(run_len[idx] - 1, confirm_days - 1)] = des[idx]
            confirmed = present & (run_len >= confirm_days)
            clean = exp_t + rc
            new_level, new_trend, new_season = hw_update(level, trend, s_k, clean, p)
            # Huber-bounded scale update: an outlier counts as c sigmas, no more and no less
            # (rejecting outliers instead lets a low estimate feed on itself).
            sig = np.where(present, np.sqrt((1 - p.scale_rate) * sig**2
                                            + p.scale_rate * np.minimum(r**2, (c * sg)**2)
                                            / kappa), sig)
            level = np.where(present, new_level, np.where(ready, lb, level))
            trend = np.where(present, new_trend, np.where(ready, p.phi * trend, trend))
            season[:, k] = np.where(present, np.maximum(new_season, SEASON_FLOOR), s_k)
            if confirmed.any():
                idx = np.flatnonzero(confirmed)
                shifted = np.nanmedian(buf[idx], axis=1)
                old = np.maximum(np.abs(lb[idx]), EPS)
                ratio = np.clip(np.abs(shifted) / old, 0.2, 5.0)
                level[idx] = shifted
                sig[idx] = sig[idx] * ratio
                run_len[idx] = 0
                run_z[idx] = 0.0
                buf[idx] = np.nan
                # Re-learn weekday profile, level and scale from the days since the shift.
                relearn_at[idx] = t - confirm_days + 1 + min_history

        expected[present, t] = exp_t[present]
        base_out[present, t] = base[present]
        sigma_out[present, t] = sg[present]
        z_out[judge, t] = z[judge]
        clean_out[present, t] = clean[present]
        big = np.abs(r) if direction == "both" else r
        strong = np.abs(z) > z_threshold
        if not month_start[t]:
            strong |= run_score > z_threshold
        flag[:, t] = (judge & (big > 0) & strong & (big >= day_floor_money)
                      & (big >= day_floor_pct * np.maximum(exp_t, 0.0)))
    return FilterResult(expected, base_out, sigma_out, z_out, flag, clean_out,
                        judged_through, start)


def _initialise(rows: np.ndarray, t: int, values: np.ndarray, weekdays: np.ndarray,
                month_start: np.ndarray, history: int, p: ModelParams, level: np.ndarray,
                trend: np.ndarray, season: np.ndarray, fee: np.ndarray, fee_known: np.ndarray,
                sig: np.ndarray, *, keep_fee: bool = False) -> None:
    """State from the warm-up window ``[t - history, t)``: weekday medians, level, MAD."""
    window = values[rows, t - history:t]
    wd = weekdays[t - history:t]
    fee_cols = month_start[t - history:t]
    regular = np.where(fee_cols[None, :], np.nan, window)
    medians = np.stack([np.nanmedian(regular[:, wd == k], axis=1) if (wd == k).any()
                        else np.full(len(rows), np.nan) for k in range(7)], axis=1)
    mean = np.nanmean(medians, axis=1)
    factors = np.where(mean[:, None] > EPS, medians / np.where(mean > EPS, mean, 1.0)[:, None], 1.0)
    factors = np.where(np.isnan(factors), 1.0, np.maximum(factors, SEASON_FLOOR))
    per_col = factors[:, wd]
    des = regular / per_col
    lv = np.nanmedian(des[:, -7:], axis=1)
    lv = np.where(np.isnan(lv), np.nanmedian(des, axis=1), lv)
    lv = np.nan_to_num(lv)
    resid = regular - lv[:, None] * per_col
    mad = np.nanmedian(np.abs(resid - np.nanmedian(resid, axis=1)[:, None]), axis=1)
    scale = np.nan_to_num(1.4826 * mad, nan=p.abs_floor)
    level[rows] = lv
    trend[rows] = 0.0
    season[rows] = factors
    sig[rows] = np.maximum(scale, np.maximum(p.rel_floor * np.abs(lv), p.abs_floor))
    cols = np.flatnonzero(fee_cols)
    if cols.size:
        j = cols[-1]
        excess = window[:, j] - lv * factors[:, wd[j]]
        known = ~np.isnan(excess)
        fee[rows] = np.where(known, excess, 0.0)
        fee_known[rows] = known
    elif not keep_fee:
        fee[rows] = 0.0
        fee_known[rows] = False
