from kit.migrations import run_env
from services.funds.models import FundsTable

run_env(FundsTable.metadata)
