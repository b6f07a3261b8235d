"""Intake: cases of released people, their needs and consent, the case timeline, erasure."""
