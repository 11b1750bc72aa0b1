"""The roles every route chooses from."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's role; the Chinese label is what people see."""

    resident = "resident"
    doctor = "doctor"
    family_doctor = "family_doctor"
    uploader = "uploader"
    agent = "agent"
    manager = "manager"
    auditor = "auditor"
    admin = "admin"

    @property
    def label(self) -> str:
        """Chinese name of the role."""
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.resident: "居民",
    Role.doctor: "医生",
    Role.family_doctor: "家庭医生",
    Role.uploader: "机构数据上传员",
    Role.agent: "热线坐席",
    Role.manager: "信息中心管理员",
    Role.auditor: "审计员",
    Role.admin: "系统管理员",
}

ALL_ROLES: frozenset[Role] = frozenset(Role)
