from services.funds.main import run

run()
