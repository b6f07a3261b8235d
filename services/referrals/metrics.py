"""Referrals' own metrics, declared once per process at import (prometheus_client refuses a second declaration)."""

from prometheus_client import Gauge

OVERDUE = Gauge("rehab_referrals_overdue", "Referrals left in `sent` longer than REHAB_REFERRALS_OVERDUE_AFTER_HOURS")
