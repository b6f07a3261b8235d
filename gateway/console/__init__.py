"""The staff web console, served by the gateway (router, templates, static assets, messages in be/ru/en)."""

from gateway.console.admin import router as admin_router
from gateway.console.referral_thread import router as referral_router
from gateway.console.router import RenewedSessionCookies, router

__all__ = ["RenewedSessionCookies", "admin_router", "referral_router", "router"]
