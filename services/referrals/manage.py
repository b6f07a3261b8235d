"""Operator commands for referrals: its `keys rotate|status` (kit.keys_cli), run by `rehab keys rotate|status|retire`
as `python -m services.referrals.manage keys …`, once for referrals as for intake and funds.

Referrals stores two wrapped data keys per referral (the packet key and the reply key, `models.WRAPPED_KEYS`):
`keys rotate` re-wraps both under the active key-encryption key while the service runs; `keys status` counts them
per KEK. A destroyed key (NULL) is neither re-wrapped nor counted.
"""

from __future__ import annotations

import typer

from kit.keys_cli import keys_commands
from services.referrals.config import ReferralsSettings
from services.referrals.models import WRAPPED_KEYS

app = typer.Typer(name="referrals-manage", help="Referrals' data keys.", no_args_is_help=True, add_completion=False)
app.add_typer(keys_commands(ReferralsSettings, WRAPPED_KEYS), name="keys")


def main() -> None:
    app(prog_name="rehab")  # reached through `rehab keys …`: its help says so


if __name__ == "__main__":
    main()
