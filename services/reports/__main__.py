from services.reports.main import run

run()
