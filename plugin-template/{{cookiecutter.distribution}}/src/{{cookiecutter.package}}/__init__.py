"""{{ cookiecutter.description }}: the `{{ cookiecutter.type_name }}` guardrail type for Gatehouse."""

from gatehouse import hookimpl

from .guardrail import {{ cookiecutter.class_name }}

__all__ = ["{{ cookiecutter.class_name }}"]


@hookimpl
def register_guardrails(register):
    register("{{ cookiecutter.type_name }}", {{ cookiecutter.class_name }})
