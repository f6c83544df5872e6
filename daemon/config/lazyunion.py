"""A discriminated union of pydantic models whose members are built on first use, one at a time.

A configuration's checks are a union of one model per signal, and its sources
one per kind. Declared as a plain pydantic union, every member's schema is
built (and every kind's models imported) when the configuration model is,
which cost most of `pillarwatch status`'s start-up. :class:`LazyUnion`
validates the same input the same way, with the same errors at the same
locations (the tag included, as pydantic puts it), but builds a member only
when an item of its tag is first validated. The JSON Schema is the full union.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticKnownError, core_schema

__all__ = ["LazyUnion"]


class LazyUnion:
    """``Annotated[Base, LazyUnion("signal", tags, member)]``: items validated by ``member(item[discriminator])``.

    `tags` gives every tag (for errors and the JSON Schema) and `member` the
    model of one tag; both are called on first need, and each member once.
    """

    def __init__(self, discriminator: str, tags: Callable[[], Iterable[str]], member: Callable[[str], type[BaseModel]]):
        self.discriminator = discriminator
        self._tags = tags
        self.member = cache(member)

    def tags(self) -> list[str]:
        return list(self._tags())

    def validate(self, value: Any) -> BaseModel:
        if isinstance(value, BaseModel):  # an instance of a member passes as it is, as in a pydantic union
            tag = getattr(value, self.discriminator, None)
            if isinstance(tag, str) and tag in self.tags() and isinstance(value, self.member(tag)):
                return value
        if not isinstance(value, dict):
            raise PydanticKnownError("model_attributes_type")
        if self.discriminator not in value:
            raise PydanticKnownError("union_tag_not_found", {"discriminator": f"'{self.discriminator}'"})
        tag, tags = value[self.discriminator], self.tags()
        if not isinstance(tag, str) or tag not in tags:
            raise PydanticKnownError("union_tag_invalid", {"discriminator": f"'{self.discriminator}'", "tag": str(tag),
                                                           "expected_tags": ", ".join(f"'{t}'" for t in tags)})
        try:
            return self.member(tag).model_validate(value)
        except ValidationError as exc:  # a pydantic union puts the tag in each error's location: so do we
            raise ValidationError.from_exception_data(exc.title, [_tagged(error, tag) for error in exc.errors()]) from None

    def eager(self) -> Any:
        """The same union as pydantic declares it, every member built."""
        members = tuple(self.member(tag) for tag in self.tags())
        return Annotated[Union[members], Field(discriminator=self.discriminator)]  # noqa: UP007 (built at run time)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # Serialised as what each item is (its own model), not as the annotated base.
        return core_schema.no_info_plain_validator_function(self.validate, serialization=core_schema.simple_ser_schema("any"))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(TypeAdapter(self.eager()).core_schema)


def _tagged(error: Any, tag: str) -> Any:
    """One error of a member's validation as line-error data, its location behind the tag."""
    return {"type": error["type"], "loc": (tag, *error["loc"]), "input": error["input"], **({"ctx": error["ctx"]} if "ctx" in error else {})}
