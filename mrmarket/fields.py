"""Model fields shared by the apps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

UINT256_MAX = 2**256 - 1


class BaseUnitsField(models.Field[int, int]):
    """A token amount in integer base units, exact up to ±uint256.

    PostgreSQL stores NUMERIC(78,0). SQLite has no exact type that wide (its NUMERIC turns large values into
    floats), so there the value is stored as text; sum such columns in Python on SQLite (see the selectors).
    """

    description = "Integer amount in base units (up to 78 digits)"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "numeric(78,0)" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> int | None:
        return None if value is None else int(value)

    def to_python(self, value: Any) -> int | None:
        if value is None or isinstance(value, int):
            return value
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            raise ValidationError(f"{value!r} is not an integer amount") from None
        if number != number.to_integral_value():
            raise ValidationError(f"{value!r} is not a whole number of base units")
        return int(number)

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        value = self.to_python(value)
        if value is None:
            return None
        if abs(value) > UINT256_MAX:
            raise ValidationError("amount exceeds uint256")
        return Decimal(value) if connection.vendor == "postgresql" else str(value)
