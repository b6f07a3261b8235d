"""The small kit every process shares: settings, database, events, bus, security, audit, logging, health.

Nothing in here knows what a case, a referral or a grant is.
"""
