from kit.migrations import run_env
from services.referrals.models import ReferralsTable

run_env(ReferralsTable.metadata)
