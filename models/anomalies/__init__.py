"""Anomaly detection on daily cost: causal, robust, grouped into events with root causes.

Public entry points (see ``api.py``): :func:`detect`, :func:`run_stage`,
:func:`load_anomalies`, :func:`record_feedback`; settings in ``settings.py``.
"""

from models.anomalies.api import (
    ANOMALIES,
    OUTPUT_COLUMNS,
    analyse,
    detect,
    events_frame,
    load_anomalies,
    run_detection,
    run_stage,
)
from models.anomalies.feedback import LABELS, load_feedback, record_feedback
from models.anomalies.settings import AnomalySettings, load_anomaly_settings

__all__ = [
    "ANOMALIES",
    "LABELS",
    "OUTPUT_COLUMNS",
    "AnomalySettings",
    "analyse",
    "detect",
    "events_frame",
    "load_anomalies",
    "load_anomaly_settings",
    "load_feedback",
    "record_feedback",
    "run_detection",
    "run_stage",
]
