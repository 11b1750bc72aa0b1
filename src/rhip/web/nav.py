"""The navigation bar: who is signed in (name, role, 退出) and only the sections that role may open.

Which roles may open a section is read from the route itself (its `require(...)` or `public()`), so the bar
cannot drift from what the server allows. Work places that are public pages but serve one role (the
resident's bookings, the family doctor's and the hospital's desks) name their roles here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from rhip.errors import RhipError
from rhip.security.deps import declared_roles, principal_from_request
from rhip.security.masking import mask_text
from rhip.security.roles import Role
from rhip.security.service import Principal

# (href, label, roles for a public page that serves only some roles, or None: the route's own roles)
SECTIONS: list[tuple[str, str, frozenset[Role] | None]] = [
    ("/registry/institutions", "机构", None),
    ("/registry/districts", "行政区", None),
    ("/registry/datasets", "数据集", None),
    ("/intake", "数据采集", None),
    ("/quality", "数据质控", None),
    ("/booking", "预约挂号", None),
    ("/booking/me", "我的预约", frozenset({Role.resident})),
    ("/booking/family", "家庭医生工作台", frozenset({Role.family_doctor})),
    ("/booking/staff", "医院工作台", frozenset({Role.doctor, Role.manager, Role.admin})),
    ("/booking/stats", "预约统计", None),
    ("/records", "健康档案调阅", None),
    ("/records/me", "我的健康档案", None),
    ("/identity", "主索引", None),
    ("/hotline", "12320 热线", None),
    ("/assistant", "智能客服宁宁", None),
    ("/telemed", "远程医疗", None),
    ("/selfservice", "自助服务", None),
    ("/map", "医疗电子地图", None),
    ("/mch", "妇幼保健", None),
    ("/bulletin", "简报", None),
    ("/docs", "接口", None),
]


@dataclass(frozen=True)
class Nav:
    """What the bar shows: the links, and the signed-in user (None when anonymous)."""

    links: list[tuple[str, str]]
    user: Principal | None

    @property
    def user_label(self) -> str:
        """'张三（居民）'."""
        if self.user is None:
            return ""
        # a resident's subject is the ID number: never shown whole on a page (anyone may look at a screen)
        who = self.user.name or mask_text(self.user.subject)
        return f"{who}（{self.user.role.label}）"


def _route_roles(app: FastAPI) -> dict[str, frozenset[Role]]:
    """Each GET page's declared roles (empty: public), computed once per app."""
    cached: dict[str, frozenset[Role]] | None = getattr(app.state, "nav_roles", None)
    if cached is None:
        from rhip.web.app import ROUTERS  # the app's routers, in the order it includes them

        cached = {}
        for module_name, prefix, _tag in ROUTERS:
            for route in importlib.import_module(module_name).router.routes:
                if isinstance(route, APIRoute) and "GET" in (route.methods or ()):
                    roles = declared_roles([d.call for d in route.dependant.dependencies])
                    if roles is not None:
                        cached.setdefault(prefix + route.path, roles)
        app.state.nav_roles = cached
    return cached


def signed_in(request: Request) -> Principal | None:
    """The caller of a page, or None (a bad or expired cookie is the same as none)."""
    if getattr(request.app.state, "settings", None) is None:  # a page router mounted alone (tests)
        return None
    try:
        return principal_from_request(request)
    except RhipError:
        return None


def nav(request: Request) -> Nav:
    """The bar for this request (a Jinja global: base.html calls it)."""
    user = signed_in(request)
    declared = _route_roles(request.app)
    links = []
    for href, label, only in SECTIONS:
        roles = only if only is not None else declared.get(href, frozenset())
        if not roles or (user is not None and user.role in roles):
            links.append((href, label))
    return Nav(links=links, user=user)
