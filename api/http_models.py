"""Request models shared by the HTTP routes."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fin: str = Field(
        description="National personal id (FIN): 7 Latin letters or digits", examples=["5ZK2M7P"]
    )
    first_name: str = Field(examples=["Aysel"])
    last_name: str = Field(examples=["Məmmədova"])
    patronymic: str | None = Field(default=None, examples=["Rauf qızı"])
    birth_date: date = Field(examples=["1984-03-12"])
    sex: str = Field(description="female or male", examples=["female"])
    relationship: str = Field(
        description="Relationship to the head: head, spouse, child, parent, sibling, grandchild, "
        "grandparent, child_in_law, parent_in_law, other_relative",
        examples=["head"],
    )
    idp_certificate_number: str | None = Field(default=None, examples=["IDP-0123456"])
    registered_address: str | None = None
