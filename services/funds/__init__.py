"""Funds: donor grants, a double-entry ledger, four-eyes disbursements that can never pay twice, reports."""
