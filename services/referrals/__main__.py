from services.referrals.main import run

run()
