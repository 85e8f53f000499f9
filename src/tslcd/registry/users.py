"""The registry's side of user bindings: security asks here whether an operator or agency exists (security/bindings.py).

Imported with the registry package, which registers it.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.registry.models import Agency, Operator
from tslcd.security import bindings

_BY_KIND = {"operator": (Operator, Operator.slug), "agency": (Agency, Agency.code)}


class RegistryResolver:
    def exists(self, session: Session, kind: bindings.Kind, obj_id: int) -> bool:
        model, _ = _BY_KIND[kind]
        return session.scalar(select(model.id).where(model.id == obj_id)) is not None

    def find_id(self, session: Session, kind: bindings.Kind, key: str) -> int | None:
        model, column = _BY_KIND[kind]
        return session.scalar(select(model.id).where(column == key.strip()))


bindings.register(RegistryResolver())
