"""The registry domain. Importing it registers how security finds operators and agencies (registry/users.py)."""

from tslcd.registry import users as _users  # noqa: F401
