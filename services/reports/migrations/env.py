from kit.migrations import run_env
from services.reports.models import ReportsTable

run_env(ReportsTable.metadata)
