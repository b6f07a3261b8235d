from gateway.models import GatewayTable
from kit.migrations import run_env

run_env(GatewayTable.metadata)
