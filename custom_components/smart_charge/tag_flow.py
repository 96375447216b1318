"""Config flows for tags: the `tag` subentry flow and the discovery of an unknown tag."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry, ConfigFlowResult, ConfigSubentry
from homeassistant.helpers import selector
import voluptuous as vol

from .site_config import chargers_of
from .subentry_flow import FormSubentryFlow, SubentryData, SubentryForm
from .tag_config import (
    CONF_ALLOWED_CHARGERS,
    CONF_COST_SENSOR,
    CONF_HISTORY_DAYS,
    CONF_PERSON,
    CONF_TAG_ID,
    CONF_TAG_NAME,
    CONF_TAG_POLICY,
    CONF_TAG_PRIORITY,
    CONF_VALID_UNTIL,
    DEFAULT_HISTORY_DAYS,
    MAX_TAG_LENGTH,
    SUBENTRY_TAG,
    TagPolicy,
    tag_key,
    tags_of,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigFlow

    _FlowBase = ConfigFlow
else:
    _FlowBase = object


# Site options (merged into the site's options flow): tags and the session history.
TAG_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(
            CONF_TAG_POLICY, default=TagPolicy.ACCEPT_ANY
        ): selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=[p.value for p in TagPolicy],
                translation_key=CONF_TAG_POLICY,
                mode=selector.SelectSelectorMode.DROPDOWN,
            )
        ),
        vol.Optional(CONF_COST_SENSOR): selector.EntitySelector(
            selector.EntitySelectorConfig(domain="sensor")
        ),
        vol.Required(
            CONF_HISTORY_DAYS, default=DEFAULT_HISTORY_DAYS
        ): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=1,
                max=3660,
                step=1,
                unit_of_measurement="d",
                mode=selector.NumberSelectorMode.BOX,
            )
        ),
    }
)


def _charger_selector(entry: ConfigEntry) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=sorted(chargers_of(entry)),
            multiple=True,
            mode=selector.SelectSelectorMode.DROPDOWN,
        )
    )


def _tag_schema(entry: ConfigEntry, *, with_id: bool) -> vol.Schema:
    fields: dict[Any, Any] = {vol.Required(CONF_TAG_NAME): selector.TextSelector()}
    if with_id:
        fields[vol.Required(CONF_TAG_ID)] = selector.TextSelector()
    fields.update(
        {
            vol.Optional(CONF_PERSON): selector.TextSelector(),
            vol.Optional(CONF_ALLOWED_CHARGERS): _charger_selector(entry),
            vol.Optional(CONF_TAG_PRIORITY): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=1, max=100, step=1, mode=selector.NumberSelectorMode.BOX
                )
            ),
            vol.Optional(CONF_VALID_UNTIL): selector.DateSelector(),
        }
    )
    return vol.Schema(fields)


def tag_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise a tag form into subentry data."""
    data: dict[str, Any] = {
        CONF_TAG_NAME: str(user_input.get(CONF_TAG_NAME) or "").strip(),
        CONF_TAG_ID: str(user_input.get(CONF_TAG_ID) or "").strip(),
    }
    if person := str(user_input.get(CONF_PERSON) or "").strip():
        data[CONF_PERSON] = person
    if allowed := user_input.get(CONF_ALLOWED_CHARGERS):
        data[CONF_ALLOWED_CHARGERS] = sorted(allowed)
    if user_input.get(CONF_TAG_PRIORITY) not in (None, ""):
        data[CONF_TAG_PRIORITY] = int(user_input[CONF_TAG_PRIORITY])
    if valid_until := user_input.get(CONF_VALID_UNTIL):
        data[CONF_VALID_UNTIL] = str(valid_until)
    return data


def tag_error(
    data: Mapping[str, Any], entry: ConfigEntry, own_subentry: str | None
) -> tuple[str, str] | None:
    """Return (field, error key) for a tag form that cannot be saved."""
    if not data[CONF_TAG_NAME]:
        return CONF_TAG_NAME, "name_required"
    id_tag = data[CONF_TAG_ID]
    if not id_tag or len(id_tag) > MAX_TAG_LENGTH:
        return CONF_TAG_ID, "invalid_tag"
    other = tags_of(entry).get(tag_key(id_tag))
    if other is not None and other.subentry_id != own_subentry:
        return CONF_TAG_ID, "duplicate_tag"
    return None


class TagSubentryFlow(FormSubentryFlow):
    """Add or reconfigure a tag (RFID card, id token) of a site."""

    def _validate(self, user_input: dict[str, Any]) -> SubentryData | dict[str, str]:
        entry, subentry = self._get_entry(), self._subentry
        data = tag_data(user_input)
        if problem := tag_error(
            data, entry, subentry.subentry_id if subentry else None
        ):
            return {problem[0]: problem[1]}
        return SubentryData(
            data[CONF_TAG_NAME], data, unique_id=tag_key(data[CONF_TAG_ID])
        )

    def _form(self, user_input: dict[str, Any] | None) -> SubentryForm:
        entry, subentry = self._get_entry(), self._subentry
        return SubentryForm(
            _tag_schema(entry, with_id=True),
            dict(user_input or (subentry.data if subentry else {})),
        )


class TagDiscoveryMixin(_FlowBase):
    """Steps of the site's config flow: a tag that is not configured was presented."""

    _tag_id: str
    _tag_entry_id: str
    _tag_charger_id: str

    async def async_step_tag_discovery(
        self, discovery_info: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Offer to add an unknown tag (the site's policy is *ask*)."""
        self._tag_id = str(discovery_info[CONF_TAG_ID])
        self._tag_entry_id = str(discovery_info["entry_id"])
        self._tag_charger_id = str(discovery_info.get("charger_id") or "")
        await self.async_set_unique_id(
            f"tag_{self._tag_entry_id}_{tag_key(self._tag_id)}"
        )
        self._abort_if_unique_id_configured()
        entry = self.hass.config_entries.async_get_entry(self._tag_entry_id)
        if entry is None:
            return self.async_abort(reason="site_gone")
        if tag_key(self._tag_id) in tags_of(entry):
            return self.async_abort(reason="already_configured")
        self.context["title_placeholders"] = {
            "charger_id": f"{self._tag_id} ({self._tag_charger_id})"
        }
        return await self.async_step_tag_confirm()

    async def async_step_tag_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Name the tag and add it to the site."""
        entry = self.hass.config_entries.async_get_entry(self._tag_entry_id)
        if entry is None:
            return self.async_abort(reason="site_gone")
        errors: dict[str, str] = {}
        if user_input is not None:
            data = tag_data({**user_input, CONF_TAG_ID: self._tag_id})
            if problem := tag_error(data, entry, None):
                errors[problem[0]] = problem[1]
            else:
                # This flow adds the tag: the site must not close it as answered.
                self.context["tag_adding"] = True  # type: ignore[typeddict-unknown-key]
                self.hass.config_entries.async_add_subentry(
                    entry,
                    ConfigSubentry(
                        data=MappingProxyType(data),
                        subentry_type=SUBENTRY_TAG,
                        title=data[CONF_TAG_NAME],
                        unique_id=tag_key(self._tag_id),
                    ),
                )
                return self.async_abort(reason="tag_added")
        return self.async_show_form(
            step_id="tag_confirm",
            data_schema=self.add_suggested_values_to_schema(
                _tag_schema(entry, with_id=False), user_input or {}
            ),
            errors=errors,
            description_placeholders={
                "id_tag": self._tag_id,
                "charger_id": self._tag_charger_id,
            },
        )
