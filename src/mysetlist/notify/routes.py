"""HTTP routes of the notify capability, gathered from its parts: sending and tracking
(delivery/), preferences and unsubscribe links (preferences/), operators' templates
(templates/), the inbox (inbox/), push subscriptions (push/) and provider webhooks
(webhooks/)."""

from __future__ import annotations

from fastapi import APIRouter

from mysetlist.notify.delivery import routes as delivery_routes
from mysetlist.notify.inbox import routes as inbox_routes
from mysetlist.notify.preferences import routes as preference_routes
from mysetlist.notify.push import routes as push_routes
from mysetlist.notify.templates import routes as template_routes
from mysetlist.notify.webhooks import routes as webhook_routes

router = APIRouter()
for part in (
    preference_routes,
    delivery_routes,
    template_routes,
    webhook_routes,
    inbox_routes,
    push_routes,
):
    router.include_router(part.router)
