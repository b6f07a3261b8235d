from services.intake.main import run

run()
