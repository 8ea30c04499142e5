"""The connection form for Airflow 3.1, whose UI reads it from the hook's classmethods
(``get_connection_form_widgets``, ``get_ui_field_behaviour``) instead of the provider info.

Airflow 3.2 and later read the declarative ``conn-fields`` and ``ui-field-behaviour`` of
:func:`~airflow_aliyun_tasks.get_provider_info.get_provider_info` and never call these (3.2 calls
them only for a connection type without declarative fields). Both forms come from the one table
of extras, :data:`~airflow_aliyun_tasks.config.EXTRAS`, so they cannot drift apart.

The widgets are WTForms fields. Airflow 3.1's API server renders them without Flask AppBuilder or
WTForms installed (it stands in mocks for ``wtforms`` and ``flask_appbuilder.fieldwidgets``), so
they are imported here, when called, and only the field classes and validators it knows are used:
``StringField``, ``IntegerField``, ``PasswordField``, ``BooleanField``, ``Optional`` and ``any_of``.
A number or a JSON object is a string field: the connection's parser reads both from their text.
"""

from __future__ import annotations

from typing import Any

from airflow_aliyun_tasks.config import EXTRAS, Extra


def _default(extra: Extra) -> Any:
    """What the field starts with: as the declarative form's ``default`` (see ``_form_field``)."""
    if extra.required:
        return extra.example
    if extra.kind == "boolean" or extra.choices:
        return extra.default
    return None


def _widget(extra: Extra) -> Any:
    from flask_appbuilder.fieldwidgets import (
        BS3PasswordFieldWidget,
        BS3TextAreaFieldWidget,
        BS3TextFieldWidget,
    )
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    label = lazy_gettext(extra.label)
    default = _default(extra)
    if extra.kind == "boolean":
        return BooleanField(label, description=extra.help, default=default)
    validators: list[Any] = [Optional()]
    if extra.choices:
        validators.append(any_of(list(extra.choices)))
    if extra.secret:
        return PasswordField(
            label, validators=validators, description=extra.help, widget=BS3PasswordFieldWidget()
        )
    if extra.kind == "integer":
        return IntegerField(
            label, validators=validators, description=extra.help, default=default, widget=BS3TextFieldWidget()
        )
    widget = BS3TextAreaFieldWidget() if extra.kind == "object" else BS3TextFieldWidget()
    return StringField(label, validators=validators, description=extra.help, default=default, widget=widget)


def connection_form_widgets() -> dict[str, Any]:
    """The form's extra fields, one per extra the declarative form shows, in the same order."""
    return {extra.name: _widget(extra) for extra in EXTRAS if extra.form}


def ui_field_behaviour() -> dict[str, Any]:
    """The declarative ``ui-field-behaviour`` with the legacy (snake_case) keys."""
    from airflow_aliyun_tasks.get_provider_info import get_provider_info

    (connection_type,) = get_provider_info()["connection-types"]
    behaviour = connection_type["ui-field-behaviour"]
    return {key.replace("-", "_"): value for key, value in behaviour.items()}
