"""The vendor's account configuration endpoints: the AlternateId and address types an account has,
and the consent types it creates. Registered at both roots, like the Profile endpoints."""

from __future__ import annotations

import re

from flask import Blueprint, request

from .. import parts
from ..contract import schemas
from ..contract.errors import invalid
from ..contract.operations import Answer, Body, Query
from .common import vendor

bp = Blueprint("account_api", __name__)

LISTED = dict.fromkeys((400, 401, 403, 406))
# What .NET's Int32 parsing takes for Id: ASCII digits only (str.isdigit also takes '²' and
# Arabic-Indic digits), white space around, and a value that fits; at most ten significant digits,
# so that int() never meets a number too long to convert.
TYPE_ID = re.compile(r"[\t\n\v\f\r ]*0*([0-9]{1,10})[\t\n\v\f\r ]*")
INT32_MAX = 2**31 - 1
TYPE_QUERY = (
    Query(
        "Id",
        {"type": "integer", "format": "int32", "minimum": 0, "maximum": INT32_MAX, "default": 0},
        "Only the type of this Id (0: all).",
    ),
    Query("locale", description="Names and descriptions in this locale (`fr-ca`); one no type has is a 404."),
)


def _types(client_id: str, kind: str) -> dict:
    """The account's types of ``kind``, filtered by ``Id`` and named in ``locale``."""
    raw_id = request.args.get("Id", "0")
    digits = TYPE_ID.fullmatch(raw_id)
    if digits is None or int(digits[1]) > INT32_MAX:
        raise invalid("Id", f"The value '{raw_id}' is not valid for Id.")
    found = parts.current().accounts.types(
        client_id, kind, type_id=int(digits[1]), locale=request.args.get("locale") or None
    )
    return {kind: found}


@bp.get("/<client:client_id>/AlternateIdTypes")
@vendor(
    "List the account's AlternateId types",
    {200: Answer("The types (an open account: those met so far).", schemas.AlternateIdTypeEntryList)},
    errors={**LISTED, 404: "No type of that Id, or none in that locale; strict mode: an unknown clientId."},
    query=TYPE_QUERY,
)
def alternate_id_types(client_id: str) -> dict:
    """The account's AlternateId types: ``{"AlternateIdTypes": [{"Id", "Name", "Description"}]}``."""
    return _types(client_id, "AlternateIdTypes")


@bp.get("/<client:client_id>/AddressTypes")
@vendor(
    "List the account's address types",
    {200: Answer("The types (an open account: those met so far).", schemas.AddressTypeEntryList)},
    errors={**LISTED, 404: "No type of that Id, or none in that locale; strict mode: an unknown clientId."},
    query=TYPE_QUERY,
)
def address_types(client_id: str) -> dict:
    """The account's address types: ``{"AddressTypes": [{"Id", "Name", "Description"}]}``."""
    return _types(client_id, "AddressTypes")


@bp.post("/<client:client_id>/ConsentTypes")
@vendor(
    "Create consent types",
    {201: Answer("Created; consents may name them from now on.", schemas.ConsentTypeEntryList)},
    errors={
        **dict.fromkeys((400, 401, 403, 406, 413, 415)),
        404: "Strict mode: an unknown clientId.",
        409: "A consent type of that name exists (case ignored); none was created.",
    },
    body=Body(schemas.CreateConsentTypeList),
)
def create_consent_types(client_id: str, body: dict) -> dict:
    """Create consent types (``{"ConsentTypes": [{"Name", "Description"}]}``): 201; from then on
    the account's consent types are configured, and a consent naming another is a 404."""
    return {"ConsentTypes": parts.current().accounts.create(client_id, "ConsentTypes", body["ConsentTypes"])}
