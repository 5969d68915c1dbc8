"""The naive baseline the bench compares with: STL plus a robust z-score on each series.

Per series, STL (period 7, robust) is fitted once on the whole judged history (it sees the
future, which only flatters it); a day is anomalous when its residual's robust z-score
(median and MAD of all residuals) exceeds ``z`` and it passes the same day floors as the
main detector. Events, thresholds and feedback then use the same code as the detector.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tsa.seasonal import STL

from models.anomalies.detect import FilterResult
from models.anomalies.series import Panel
from models.anomalies.settings import AnomalySettings

Z = 3.5


def stl_filter(panel: Panel, settings: AnomalySettings, *, z_limit: float = Z) -> FilterResult:
    n_series, n_days = panel.values.shape
    last = n_days - 1 - settings.incomplete_days
    expected = np.full((n_series, n_days), np.nan)
    z = np.full((n_series, n_days), np.nan)
    flag = np.zeros((n_series, n_days), dtype=bool)
    judged_from = panel.first + settings.min_history_days
    money, pct = settings.day_floor()
    for s in range(n_series):
        lo = int(panel.first[s])
        if last - lo + 1 < max(settings.min_history_days, 15):
            continue
        y = panel.values[s, lo:last + 1]
        y = np.where(np.isnan(y), np.nanmedian(y), y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = STL(y, period=7, robust=True).fit()
        resid = np.asarray(fit.resid)
        med = float(np.median(resid))
        mad = 1.4826 * float(np.median(np.abs(resid - med)))
        scale = max(mad, 0.01, 0.01 * float(np.median(np.abs(y))))
        exp = y - resid
        zz = (resid - med) / scale
        expected[s, lo:last + 1] = exp
        z[s, lo:last + 1] = zz
        dev = y - exp
        ok = ((zz > z_limit) & (dev >= money) & (dev >= pct * np.maximum(exp, 0)))
        ok[: settings.min_history_days] = False
        flag[s, lo:last + 1] = ok
    return FilterResult(expected, expected.copy(), np.full_like(expected, np.nan), z, flag,
                        panel.values.copy(), last, judged_from)
