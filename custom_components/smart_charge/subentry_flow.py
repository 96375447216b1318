"""The shape every subentry flow of a site shares: one form to add or change a subentry.

Panels, chargers and tags each have a `user` step (add) and a `reconfigure` step
(change) that show the same form. A flow says only how a filled form is checked
(`_validate`: errors by field, or what to save) and what the form shows (`_form`);
this base runs the round trip: errors show the form again with what was typed, a
valid form creates the subentry or updates it and closes the flow.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
import voluptuous as vol


class SubentryData(NamedTuple):
    """What a valid form saves: the subentry's title, data and unique id.

    Without a unique id a new subentry has none and a changed one keeps its own.
    """

    title: str
    data: dict[str, Any]
    unique_id: str | None = None


class SubentryForm(NamedTuple):
    """What the form shows: its schema, the values it is filled with, placeholders."""

    schema: vol.Schema
    defaults: Mapping[str, Any] | None
    placeholders: Mapping[str, str] | None = None


class FormSubentryFlow(ConfigSubentryFlow):
    """A subentry flow whose `user` and `reconfigure` steps show one form."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a subentry."""
        return await self._async_form("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a subentry."""
        return await self._async_form("reconfigure", user_input)

    @property
    def _subentry(self) -> ConfigSubentry | None:
        """Return the subentry being changed, None while adding one."""
        if self.source == SOURCE_RECONFIGURE:
            return self._get_reconfigure_subentry()
        return None

    @abstractmethod
    def _validate(self, user_input: dict[str, Any]) -> SubentryData | dict[str, str]:
        """Return what a filled form saves, or its errors by field."""

    @abstractmethod
    def _form(self, user_input: dict[str, Any] | None) -> SubentryForm:
        """Return the form, filled with what was typed or what is stored."""

    async def _async_form(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        entry, subentry = self._get_entry(), self._subentry
        errors: dict[str, str] = {}
        if user_input is not None:
            result = self._validate(user_input)
            if isinstance(result, SubentryData):
                title, data, unique_id = result
                if subentry is None:
                    return self.async_create_entry(
                        title=title, data=data, unique_id=unique_id
                    )
                if unique_id is None:
                    return self.async_update_and_abort(
                        entry, subentry, data=data, title=title
                    )
                return self.async_update_and_abort(
                    entry, subentry, data=data, title=title, unique_id=unique_id
                )
            errors = result
        form = self._form(user_input)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(form.schema, form.defaults),
            errors=errors,
            description_placeholders=form.placeholders,
        )
