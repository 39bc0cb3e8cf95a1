"""The admin speaks the same access policy as the API, and writes records through their apps' services."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.contrib import messages as admin_messages
from django.contrib.admin.widgets import AutocompleteMixin
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import BaseForm, BaseInlineFormSet
from django.http import HttpRequest
from django.utils.functional import cached_property

from core import policy
from core.rules import NON_FIELD, RuleViolation, StateConflict

# The admin names the service it belongs to (Django's default reads "Django administration").
admin.site.site_header = "Export-control enforcement — case management"
admin.site.site_title = "Export-control enforcement"
admin.site.index_title = "Cases, records and imports"

# Agency-owned records that other records point at; a form offers only those the user may reference.
REFERENCED_MODELS = frozenset({"entities.entity", "shipments.licence", "cases.case"})
# The relations a record's label reads (a unit is shown as "SSB/econ"): select lists read them with their rows.
LABEL_RELATIONS: dict[str, tuple[str, ...]] = {"accounts.unit": ("agency",)}


def per_request(request: HttpRequest, key: Any, compute: Callable[[], Any]) -> Any:
    """`compute()` once a request: a page asks the same permission for each of its apps, inline rows and links."""
    memo = request.__dict__.setdefault("_admin_memo", {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _is_case_record(model: type[models.Model]) -> bool:
    """A case's own record (party, prosecution, evidence): no agency of its own, it follows its case."""
    names = {f.name for f in model._meta.concrete_fields}
    return "case" in names and "agency" not in names


def reference_choices(user: Any, target: type[models.Model], source: type[models.Model], *,
                      with_archived: bool = False) -> QuerySet | None:
    """The `target` rows a field of a `source` record may point at (None: `target` is not scoped).

    A record references only records of its own agency (API.md § Access): an agency record
    (shipment, link, licence) those of the user's agency; a case's record those of cases the user
    may write (their agency's, or shared with it read-write). Archived rows are not offered; a form's
    choices keep them (`with_archived`) so that a record still naming one can be saved, and `ReferencesForm`
    refuses a newly chosen one. Forms check the exact agency on top, since a choice list cannot know it.
    """
    concrete = target._meta.concrete_model or target  # a proxy (Person) stands for its table (Entity)
    label = concrete._meta.label_lower
    if label not in REFERENCED_MODELS:
        return None
    case_record = _is_case_record(source)
    if label == "cases.case" and case_record:
        qs = policy.cases_writable(user, "case.party")
        return qs if with_archived else qs.filter(archived=False)
    qs = policy.visible(user, concrete)
    if not with_archived:
        qs = qs.filter(archived=False)
    if getattr(user, "is_superuser", False):
        return qs
    agencies = [user.agency_id]
    if case_record:
        agencies += policy.cases_writable(user, "case.party").values_list("agency_id", flat=True).distinct()
    return qs.filter(agency_id__in=agencies)


def _autocomplete_source(request: HttpRequest) -> type[models.Model] | None:
    """The model whose field asks, when `request` is the admin's autocomplete of a relation field."""
    from django.apps import apps

    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != "autocomplete":
        return None
    try:
        return apps.get_model(request.GET["app_label"], request.GET["model_name"])
    except (KeyError, LookupError):
        return None


class ScopedReferencesMixin:
    """Relation fields offer only the records the edited record may name (`reference_choices`)."""

    model: Any

    def _scoped(self, db_field, request, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "queryset" not in kwargs:
            scoped = reference_choices(request.user, db_field.related_model, self.model, with_archived=True)
            if scoped is not None:
                kwargs["queryset"] = scoped
        label_relations = LABEL_RELATIONS.get(db_field.related_model._meta.label_lower)
        if label_relations:
            queryset = kwargs.get("queryset")
            if queryset is None:
                queryset = self.get_field_queryset(None, db_field, request)  # type: ignore[attr-defined]
            if queryset is None:
                queryset = db_field.related_model._default_manager.all()
            kwargs["queryset"] = queryset.select_related(*label_relations)
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(  # type: ignore[misc]
            db_field, request, **self._scoped(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(  # type: ignore[misc]
            db_field, request, **self._scoped(db_field, request, kwargs))


class PolicyAdminMixin(ScopedReferencesMixin):
    """Rows and permissions from `core.policy`, not from Django's model permissions; relation fields scoped."""

    model: Any
    create_action: str | None = None

    def get_queryset(self, request):
        return policy.visible(request.user, super().get_queryset(request))  # type: ignore[misc]

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        if obj is None:
            return True
        visible = policy.visible(request.user, self.model)
        return per_request(request, ("view", self.model, obj.pk), visible.filter(pk=obj.pk).exists)

    def has_add_permission(self, request, obj=None) -> bool:
        return self.create_action is not None and policy.allows(request.user, self.create_action)

    def has_change_permission(self, request, obj=None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        writable = policy.writable(request.user, self.model)
        if obj is not None:
            return per_request(request, ("change", self.model, obj.pk), writable.filter(pk=obj.pk).exists)
        # Asked for every app of the side bar and every link of a page: answered once a request.
        return per_request(request, ("change", self.model, None), lambda: writable.exists() or (
            self.create_action is not None and policy.allows(request.user, self.create_action)))

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing is destroyed; records are archived

    def get_search_results(self, request, queryset, search_term):
        """The autocomplete of a relation field offers what that field may reference, not all that is visible."""
        queryset, may_have_duplicates = super().get_search_results(  # type: ignore[misc]
            request, queryset, search_term
        )
        source = _autocomplete_source(request)
        if source is not None:
            scoped = reference_choices(request.user, self.model, source)
            if scoped is not None:
                queryset = queryset.filter(pk__in=scoped.values("pk"))
        return queryset, may_have_duplicates


def add_rule_errors(form: BaseForm, exc: RuleViolation) -> None:
    """A service's RuleViolation as the form's errors: on the field it names when the form has it, else on top."""
    for field, messages in exc.errors.items():
        target = field if field in form.fields and field != NON_FIELD else None
        for message in messages:
            form.add_error(target, message)


class ReferencesForm(forms.ModelForm):
    """Every agency-owned record the form points at belongs to the edited record's agency.

    The choice lists are already narrowed (`reference_choices`); this catches what they cannot know:
    a superuser's choice, or a case party of another agency's case shared read-write.
    """

    request: ClassVar[HttpRequest | None] = None  # set by ServiceAdmin.get_form on the class it builds

    def owner_agency_id(self, data: dict[str, Any]) -> Any:
        """The agency of the record being edited: its own, its case's, else (a new record) the editor's."""
        if isinstance(data.get("agency"), models.Model):
            return data["agency"].pk
        if getattr(self.instance, "agency_id", None) is not None:
            return self.instance.agency_id
        case = data.get("case") if "case" in self.fields else None
        if case is None and getattr(self.instance, "case_id", None) is not None:
            case = self.instance.case
        if case is not None and case.agency_id is not None:
            return case.agency_id
        user = getattr(self.request, "user", None)
        return getattr(user, "agency_id", None)

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        owner = self.owner_agency_id(data)
        for name, field in self.fields.items():
            value = data.get(name)
            if owner is None or not value or not isinstance(field, forms.ModelChoiceField) or field.queryset is None:
                continue
            if field.queryset.model._meta.label_lower not in REFERENCED_MODELS:
                continue
            values = list(value) if isinstance(field, forms.ModelMultipleChoiceField) else [value]
            if any(v.agency_id != owner for v in values):
                self.add_error(name, "Only records of the same agency as this record may be named here.")
            elif name in self.changed_data and any(v.archived and v.pk not in self._initial_pks(name) for v in values):
                self.add_error(name, "An archived record cannot be newly named here.")
        return data

    def _initial_pks(self, name: str) -> set[Any]:
        initial = self.get_initial_for_field(self.fields[name], name)
        items = initial if isinstance(initial, list | tuple | QuerySet) else [initial]
        return {getattr(item, "pk", item) for item in items if item is not None}


# --- records written by their app's services ----------------------------------------------------


class ServiceForm(ReferencesForm):
    """The form of a record its app's services write: it parses, and `clean()` shows the service's rules as the
    form's errors (`check_rules`), so a save finds nothing new but a race. It never saves itself."""

    # The fields the service takes; None: every field of the record but its id and agency.
    service_fields: ClassVar[frozenset[str] | None] = None
    state_field: ClassVar[str | None] = None  # where a refused state move (StateConflict) is shown

    def service_data(self) -> dict[str, Any]:
        """The parsed values the service takes."""
        fields = self.service_fields
        if fields is None:
            fields = frozenset(f.name for f in self._meta.model._meta.get_fields()
                               if getattr(f, "concrete", False)) - {"id", "agency"}
        return {name: value for name, value in self.cleaned_data.items() if name in fields}

    def stored(self) -> Any:
        """The record as stored (None when it is being added): the form's instance until it is saved."""
        return None if self.instance._state.adding else self.instance

    def check_rules(self, data: dict[str, Any]) -> None:
        """Raise the service's RuleViolation (or StateConflict) for the parsed values `data`."""

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        try:
            self.check_rules(data)
        except RuleViolation as exc:
            add_rule_errors(self, exc)
        except StateConflict as exc:
            self.add_error(self.state_field, str(exc))
        return data


def inline_rows(formsets: list[Any], model: type[models.Model]) -> list[dict[str, Any]] | None:
    """The rows the inline of `model` leaves, for a service that writes them with their record (a shipment's legs,
    a prosecution's charges): each form's `service_data()`, in the order of their numbers (`seq`, then as listed),
    without those marked for deletion. None when the page has no such inline: the rows stay as they are."""
    found = [formset for formset in formsets if formset.model is model]
    if not found:
        return None
    rows = []
    for formset in found:
        for index, row_form in enumerate(formset.forms):
            data = getattr(row_form, "cleaned_data", None) or {}
            if data and not data.get("DELETE"):
                rows.append((data.get("seq") or 0, index, row_form.service_data()))
    return [row for _, _, row in sorted(rows, key=lambda row: row[:2])]


def _locked(obj: models.Model) -> Any:
    """The stored row of the record a form edits, locked: the services compare the form's values with it."""
    return type(obj)._default_manager.select_for_update(of=("self",)).get(pk=obj.pk)


def _adopt(obj: models.Model, stored: models.Model) -> None:
    """The admin's form instance becomes the record the service stored (its page, its log entry, its message)."""
    for field in type(stored)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(stored, field.attname))
    obj._state.adding, obj._state.db = False, stored._state.db


def _owns_agency(model: type[models.Model]) -> bool:
    return any(f.name == "agency" for f in model._meta.concrete_fields)


class _Fetched:
    """What an autocomplete widget of a row shows (its chosen record), read once for all the rows of a formset:
    stands for the widget's `choices` (AutocompleteMixin.optgroups reads `.field` and `.queryset.filter()`)."""

    def __init__(self, field: forms.ModelChoiceField, rows: list[models.Model]) -> None:
        self.field, self.rows = field, rows
        self.queryset = self

    def using(self, alias: Any) -> _Fetched:
        return self

    def filter(self, **lookup: Any) -> list[models.Model]:
        ((name, wanted),) = lookup.items()
        attname = name.removesuffix("__in")
        return [row for row in self.rows if str(getattr(row, attname)) in wanted]


class SharedChoicesFormSet(BaseInlineFormSet):
    """The rows of an inline read their select lists once for the formset, not once a row: a plain select's
    choices are shared by the rows, and an autocomplete's chosen records are read together."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)  # type: ignore[misc]
        if getattr(self, "fk", None) is not None and self.instance.pk is not None:
            setattr(form.instance, self.fk.name, self.instance)  # a row's label may name its record: not read again
        return form

    @cached_property
    def forms(self):  # type: ignore[override]
        rows = super().forms
        self._share([*rows, self._empty_form])
        return rows

    @cached_property
    def _empty_form(self) -> BaseForm:
        return super().empty_form

    @property
    def empty_form(self) -> BaseForm:  # type: ignore[override]
        self.forms  # noqa: B018  (shares the choices with the empty form too)
        return self._empty_form

    def _share(self, row_forms: list[BaseForm]) -> None:
        if not row_forms:
            return
        for name, field in row_forms[0].fields.items():
            if not isinstance(field, forms.ModelChoiceField) or isinstance(field, forms.ModelMultipleChoiceField) \
                    or field.widget.is_hidden:  # a row's own id: no list to show
                continue
            fields: list[Any] = [form.fields[name] for form in row_forms if name in form.fields]
            if isinstance(getattr(field.widget, "widget", field.widget), AutocompleteMixin):  # maybe wrapped
                chosen = {str(value) for form in row_forms if name in form.fields
                          for value in [form[name].value()] if value not in field.empty_values}
                fetched = list(field.queryset.filter(pk__in=chosen)) if chosen and field.queryset is not None else []
                for each in fields:
                    each.widget.choices = _Fetched(each, fetched)  # type: ignore[assignment]
            else:
                choices = list(field.choices)  # type: ignore[arg-type]  # a ModelChoiceIterator
                for each in fields:
                    each.choices = choices


class RecordRowsInline(admin.TabularInline):
    """Rows shown on their record's page (a shipment's legs, a prosecution's charges, a case's parties): whoever may
    write the record (`may_write`) may add, change and remove them."""

    extra = 0
    formset = SharedChoicesFormSet

    def get_queryset(self, request):
        """The rows with the records their fields show (a party's entity, a note's author), read together."""
        shown = {*(self.fields or ()), *self.readonly_fields}
        related = []
        for field in self.model._meta.concrete_fields:
            if field.is_relation and field.name in shown:
                related.append(field.name)
                related += [f"{field.name}__{name}" for name in
                            LABEL_RELATIONS.get(field.related_model._meta.label_lower, ())]
        queryset = super().get_queryset(request)
        return queryset.select_related(*related) if related else queryset

    def may_write(self, request: HttpRequest, obj: models.Model) -> bool:
        return policy.writable(request.user, type(obj)).filter(pk=obj.pk).exists()

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        # Asked for each row of the inline: answered once a request.
        return obj is None or per_request(request, ("rows", type(self), obj.pk), lambda: self.may_write(request, obj))

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)


class ServiceInline(ScopedReferencesMixin, RecordRowsInline):
    """An inline whose rows are records of their own (a case's parties, notes, shares), each written by its
    service: `ServiceAdmin.save_formset` calls these hooks with each row form's `service_data()`. Its relation
    fields offer and accept only what the rows may name, as the record's own (`ReferencesForm`)."""

    form = ServiceForm

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.request = request  # type: ignore[attr-defined]
        formset.service_inline = self  # type: ignore[attr-defined]  # found by ServiceAdmin.save_formset
        return formset

    def create_row(self, request: HttpRequest, parent: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update_row(self, request: HttpRequest, stored: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def archive_row(self, request: HttpRequest, stored: Any) -> Any:
        raise NotImplementedError


class ServiceAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """The admin of records their app's services write, never the form's own save: adds, changes and the archive
    action go through the hooks below, so the service checks the rules, derives, versions, audits and tells the
    outbox exactly as through the API. Relation fields offer and accept only what the record may name
    (`ReferencesForm`)."""

    form = ServiceForm
    actions: Any = ("archive_selected",)
    readonly_fields: ClassVar[tuple[str, ...]] = ("id", "version", "created_at", "updated_at")

    # --- the hooks an app's admin fills in with its services

    def create_record(self, request: HttpRequest, agency: Any, data: dict[str, Any]) -> Any:
        """Create the record from the form's `service_data()` (and `children`); `agency`: the new record's, None
        for a case's own record (its case is in `data`)."""
        raise NotImplementedError

    def update_record(self, request: HttpRequest, stored: Any, data: dict[str, Any]) -> Any:
        """Change `stored` (the row as stored, locked) to `data`."""
        raise NotImplementedError

    def archive_record(self, request: HttpRequest, obj: Any) -> Any:
        raise NotImplementedError

    def children(self, formsets: list[Any]) -> dict[str, Any]:
        """Rows of inlines the service writes with the record ({"legs": inline_rows(formsets, ShipmentLeg)})."""
        return {}

    # --- the admin's own steps

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is None and request.user.is_superuser:
            return tuple(f for f in fields if f != "agency")  # a superuser has no agency: they pick one
        return fields

    def get_list_filter(self, request):
        filters = tuple(super().get_list_filter(request))
        return (*filters, "agency") if _owns_agency(self.model) and request.user.is_superuser else filters

    def save_model(self, request, obj, form, change):
        """Nothing yet: `save_related` writes the record with the inline rows its service takes, in one call."""

    def save_related(self, request, form, formsets, change):
        data = {**form.service_data(), **self.children(formsets)}
        obj = form.instance
        with transaction.atomic():
            if change:
                saved = self.update_record(request, _locked(obj), data)
            else:
                agency = None
                if _owns_agency(self.model):  # the one a superuser picked, else the editor's
                    agency = obj.agency if obj.agency_id is not None else request.user.agency
                saved = self.create_record(request, agency, data)
            _adopt(obj, saved)
            for formset in formsets:
                self.save_formset(request, form, formset, change)

    def save_formset(self, request, form, formset, change):
        """Rows that are records of their own go through their inline's hooks (`ServiceInline`); the others were
        written with the record (`children`) or are read-only. What formset.save() would have recorded is kept
        for the admin's change message."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        inline = getattr(formset, "service_inline", None)
        if inline is None:
            return
        for row_form in formset.forms:
            if row_form.instance._state.adding:
                if row_form.has_changed() and not formset._should_delete_form(row_form):
                    formset.new_objects.append(inline.create_row(request, form.instance, row_form.service_data()))
            elif formset._should_delete_form(row_form):
                formset.deleted_objects.append(inline.archive_row(request, _locked(row_form.instance)))
            elif row_form.has_changed():
                row = inline.update_row(request, _locked(row_form.instance), row_form.service_data())
                formset.changed_objects.append((row, row_form.changed_data))

    def change_each(self, request: HttpRequest, queryset: QuerySet, change: Callable[[Any], Any], *,
                    done: str) -> int:
        """A bulk action's work: `change(row)` (a service call) on each selected row the user may change, one
        transaction each; a row whose rules refuse it is named in a warning and the others go on. `done`: the closing
        message, with `{count}` for the rows changed."""
        changed = 0
        for obj in policy.writable(request.user, queryset):
            try:
                with transaction.atomic():
                    change(obj)
                changed += 1
            except (RuleViolation, StateConflict) as exc:
                self.message_user(request, f"{obj}: {exc}", admin_messages.WARNING)
        self.message_user(request, done.format(count=changed))
        return changed

    @admin.action(description="Archive the selected records", permissions=["change"])
    def archive_selected(self, request, queryset):
        archived = 0
        for obj in policy.writable(request.user, queryset).filter(archived=False):
            with transaction.atomic():
                self.archive_record(request, obj)
            archived += 1
        self.message_user(request, f"Archived {archived} record(s).")


# --- form fields for the contract's value formats, so the admin applies the API's rules ------


def error_text(exc: ValueError) -> str:
    """A cleaning function's error as one line (InvalidParts' per-part messages joined)."""
    errors = getattr(exc, "errors", None)  # entities.validators.InvalidParts: {part: [messages]}
    if isinstance(errors, dict):
        return "; ".join(f"{part}: {' '.join(map(str, msgs))}" for part, msgs in errors.items())
    return str(exc)


class CleanedField(forms.CharField):
    """Text passed through one of the project's cleaning functions; its ValueError becomes the field's error."""

    def __init__(self, *, cleaner, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        self.cleaner = cleaner
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            return self.cleaner(value)
        except ValueError as exc:
            raise forms.ValidationError(error_text(exc)) from exc


class ListField(forms.CharField):
    """A list edited as text: one item a line (`delimiter="\\n"`, for names that hold commas) or comma-separated.

    Blank items are dropped, each item is passed through `item` (a cleaning function raising ValueError),
    duplicates are dropped, and every bad item is reported at once.
    """

    def __init__(self, *, delimiter: str = ",", item=None, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        if delimiter == "\n":
            kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
        self.delimiter, self.item = delimiter, item
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return self.delimiter.join(str(v) for v in value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        if isinstance(value, list | tuple):
            return list(value)
        return [part.strip() for part in str(value or "").split(self.delimiter) if part.strip()]

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def run_validators(self, value):
        pass  # CharField's length validators would measure the list, not its items

    def clean(self, value):
        items = super().clean(value)
        cleaned: list[Any] = []
        errors = []
        for position, raw in enumerate(items, start=1):
            try:
                item = self.item(raw) if self.item else raw
            except ValueError as exc:
                errors.append(forms.ValidationError(f"Item {position} ({raw}): {error_text(exc)}"))
                continue
            if item not in cleaned:
                cleaned.append(item)
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


def api_rule(field: Any):
    """A DRF field's validation (CountryField, CurrencyField, HSCodeField, …) as a cleaning function, so that
    the admin applies exactly the API's rule; its error becomes a ValueError."""
    from rest_framework import serializers

    def clean(value: Any) -> Any:
        try:
            return field.run_validation(value)
        except serializers.ValidationError as exc:
            detail: Any = exc.detail
            while isinstance(detail, list | dict):
                detail = next(iter(detail.values() if isinstance(detail, dict) else detail), "")
            raise ValueError(str(detail)) from exc

    return clean


# --- repeatable rows: a list of values edited as rows of inputs, never typed as JSON ---------------------------


@dataclass(frozen=True)
class RowColumn:
    """One input of a row: its key in the row's value, its heading, and a select's choices (None: a text input)."""

    key: str
    label: str
    choices: tuple[tuple[str, str], ...] | None = None
    size: int = 20


class RowsWidget(forms.Widget):
    """Rows of inputs, one row a list item, with one empty row to fill in: enough without JavaScript. Our script
    (core/rows.js) adds an "Add another" button and a remove button on each row. Every row's inputs share their
    column's name (`identifiers-number`, or the field's own name when there is one column), so rows added in the
    browser need no numbering; a row left blank is dropped. Messages of a bad row (`row_errors`) are shown on it."""

    template_name = "core/widgets/rows.html"
    extra = 1

    class Media:
        js = ("core/rows.js",)
        css = {"all": ("core/rows.css",)}

    def __init__(self, columns: Sequence[RowColumn], attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.columns = tuple(columns)
        self.row_errors: dict[int, list[str]] = {}

    def __deepcopy__(self, memo):
        copied = super().__deepcopy__(memo)
        copied.row_errors = {}  # each form's own
        return copied

    def input_name(self, name: str, column: RowColumn) -> str:
        return name if len(self.columns) == 1 else f"{name}-{column.key}"

    def value_from_datadict(self, data, files, name):
        def values(key: str) -> list[Any]:
            if hasattr(data, "getlist"):
                return data.getlist(key)
            found = data.get(key)
            return list(found) if isinstance(found, list | tuple) else ([] if found is None else [found])

        columns = [values(self.input_name(name, column)) for column in self.columns]
        rows = []
        for cells in itertools.zip_longest(*columns, fillvalue=""):
            row = {column.key: str(cell or "").strip() for column, cell in zip(self.columns, cells, strict=True)}
            if any(row.values()):
                rows.append(row)
        return rows

    def value_omitted_from_data(self, data, files, name):
        return not any(self.input_name(name, column) in data for column in self.columns)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        items = list(value) if isinstance(value, list | tuple) else []
        rows = []
        for index, item in enumerate([*items, *([{}] * self.extra)]):
            cells = []
            for number, column in enumerate(self.columns):
                cell_id = widget_id if index == 0 and number == 0 else f"{widget_id}_{index}_{column.key}"
                cells.append({"name": self.input_name(name, column), "id": cell_id, "label": column.label,
                              "value": str(item.get(column.key) or ""), "choices": column.choices,
                              "size": column.size})
            rows.append({"cells": cells, "errors": self.row_errors.get(index, [])})
        context["widget"].update(columns=self.columns, rows=rows, table_id=f"{widget_id}_rows")
        return context


def rows_message(errors: dict[int, list[str]]) -> str:
    """The field's message for rows whose own messages are shown on them."""
    numbers = ", ".join(str(index + 1) for index in sorted(errors))
    return f"Correct row {numbers} below." if len(errors) == 1 else f"Correct rows {numbers} below."


def add_row_errors(form: forms.BaseForm, name: str, errors: dict[int, list[str]]) -> None:
    """Messages about rows of a RowsField found after its own cleaning (by position): shown on the rows."""
    widget = form.fields[name].widget
    if isinstance(widget, RowsWidget):
        widget.row_errors.update(errors)
        form.add_error(name, rows_message(errors))
    else:
        form.add_error(name, [f"Item {index + 1}: {' '.join(msgs)}" for index, msgs in sorted(errors.items())])


class RowsField(forms.Field):
    """A list edited as rows (RowsWidget): the text of the one column, or a dict of the columns' keys, each row
    passed through `item` (a cleaning function raising ValueError, as ListField's) and duplicates dropped; a bad
    row's message is shown on that row."""

    def __init__(self, *, columns: Sequence[RowColumn], item: Callable[[Any], Any] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", RowsWidget(columns))
        self.columns, self.item = tuple(columns), item
        super().__init__(**kwargs)

    def _row(self, value: Any) -> dict[str, str]:
        if isinstance(value, dict):
            return {column.key: str(value.get(column.key) or "") for column in self.columns}
        return {self.columns[0].key: str(value or "")}

    def prepare_value(self, value):
        """Stored items (texts or dicts) or submitted rows as the widget's rows."""
        return [self._row(item) for item in value] if isinstance(value, list | tuple) else []

    def to_python(self, value):
        rows = self.prepare_value(value)
        if len(self.columns) == 1:
            return [row[self.columns[0].key] for row in rows]
        return rows

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def clean(self, value):
        rows = self.to_python(value)
        self.validate(rows)
        cleaned: list[Any] = []
        errors: dict[int, list[str]] = {}
        for index, row in enumerate(rows):
            try:
                item = self.item(row) if self.item else row
            except ValueError as exc:
                errors[index] = [error_text(exc)]
                continue
            if item not in cleaned or self.item is None:  # uncleaned rows keep their positions for later checks
                cleaned.append(item)
        if errors:
            assert isinstance(self.widget, RowsWidget)
            self.widget.row_errors = errors
            raise forms.ValidationError(rows_message(errors))
        return cleaned

    def has_changed(self, initial, data):
        return self.prepare_value(initial) != self.prepare_value(data)
