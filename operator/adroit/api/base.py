"""Shared pieces of the resource models: camelCase fields and CEL rules."""

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# Regular expressions the API server checks (Go RE2 syntax: no lookarounds).
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# A label key (a "qualified name"): a name of at most 63 characters, optionally
# after a DNS subdomain prefix and '/'. The prefix's own limit of 253 characters
# is checked apart. No backslashes, so the pattern drops into a CEL string as is.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
MAX_LABEL_KEY_PREFIX = 253
MAX_LABEL_KEY = MAX_LABEL_KEY_PREFIX + 1 + 63
MAX_LABEL_VALUE = 63
# An HTTP path of printable ASCII characters. Not `\S`: RE2 (the API server's) and Rust's
# regex (pydantic's) disagree on Unicode spaces, and a path admitted by one and refused by
# the other made a Flavor the operator could not read.
URL_PATH = r"^/[!-~]*$"


class Resource(BaseModel):
    """A part of a custom resource: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, without unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Report(Resource):
    """A part of a status: written by the operator, read back leniently.

    Fields an older or newer operator wrote are ignored rather than refused.
    """

    model_config = ConfigDict(extra="ignore")


def cel(
    rule: str,
    message: str,
    *,
    message_expression: str | None = None,
    field_path: str | None = None,
    reason: str | None = None,
    optional_old_self: bool = False,
) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry, checked by the API server itself.

    A `message_expression` (CEL that names the offending value) is shown instead
    of `message` when it evaluates; `message` stays the fallback.
    """
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if message_expression:
        entry["messageExpression"] = message_expression
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    if optional_old_self:
        entry["optionalOldSelf"] = True
    return entry


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    """`json_schema_extra` carrying CEL rules into the generated CRD."""
    return {"x-kubernetes-validations": list(rules)}
