"""The web entry point: create_app(), problem+json, shared templates and static files."""

from rhip.web.app import create_app

__all__ = ["create_app"]
