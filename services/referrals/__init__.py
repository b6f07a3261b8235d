"""Referrals: the partner directory, referrals with their lifecycle, and the partner-facing API."""
