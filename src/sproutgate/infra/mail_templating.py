"""Mail text from Jinja2 template files, one per kind of mail and language, which an operator
can override without forking: ``SPROUTGATE_MAIL_TEMPLATES_DIR`` is searched before the
templates shipped in ``infra/mail_templates/``.

Layout (the same in both places): ``<lang>/<kind>.txt``, e.g. ``en/new_sign_in.txt``, with
two blocks::

    {% block subject %}[{{ product }}] New sign-in to your account{% endblock %}
    {% block body %}
    Hello {{ account }}! ...
    {% endblock %}

A file may include others by the same names (``{% include "en/_event.txt" %}``: when, from
where); an override directory needs only the files it changes. Every template gets
``product`` (``SPROUTGATE_PRODUCT_NAME``) besides its own values (docs/deployment.md lists
them). Text only, no HTML escaping: the mail is ``text/plain``.

A broken override (a syntax error, an error while rendering) never stops a mail: it is logged
and the shipped template is used instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    Template,
    TemplateError,
)

from sproutgate.i18n import DEFAULT_LANG, LANGS
from sproutgate.infra.mailer import MailText

log = logging.getLogger(__name__)

PACKAGED_DIR = Path(__file__).parent / "mail_templates"


def _environment(*dirs: Path) -> Environment:
    loader = ChoiceLoader([FileSystemLoader(str(d)) for d in dirs])
    # Plain text: nothing is escaped; a missing value renders empty rather than failing a mail.
    return Environment(loader=loader, autoescape=False, keep_trailing_newline=False)  # noqa: S701


def _block(template: Template, name: str, values: dict[str, object]) -> str:
    render = template.blocks.get(name)
    if render is None:
        raise TemplateError(f"{template.name} has no {{% block {name} %}}")
    return "".join(render(template.new_context(values))).strip()


class JinjaMailTemplates:
    """``infra.mailer.MailTemplates`` on template files. ``override_dir``: the operator's
    directory (``SPROUTGATE_MAIL_TEMPLATES_DIR``), searched first; ``product``: the product
    name every template sees as ``product``."""

    def __init__(self, product: str, override_dir: Path | None = None) -> None:
        self.product = product
        self.override_dir = override_dir
        self._packaged = _environment(PACKAGED_DIR)
        self._env = _environment(override_dir, PACKAGED_DIR) if override_dir else self._packaged
        if override_dir is not None and not override_dir.is_dir():
            log.warning("mail templates: %s is not a directory; the shipped templates are used", override_dir)

    def render(self, kind: str, lang: str, params: Mapping[str, object]) -> MailText:
        """Subject (one line) and text body of ``kind`` in ``lang``. Raises jinja2's
        TemplateNotFound only when we ship no template of that kind (a programming error)."""
        lang = lang if lang in LANGS else DEFAULT_LANG
        values: dict[str, object] = {"product": self.product, "lang": lang, **params}
        name = f"{lang}/{kind}.txt"
        if self._env is not self._packaged:
            try:
                return self._render(self._env, name, values)
            except Exception as exc:  # noqa: BLE001 - an operator's template must not stop a mail
                log.error(
                    "mail templates: %s in %s is broken (%s: %s); using the shipped one",
                    name,
                    self.override_dir,
                    type(exc).__name__,
                    exc,
                )
        return self._render(self._packaged, name, values)

    @staticmethod
    def _render(env: Environment, name: str, values: dict[str, object]) -> MailText:
        template = env.get_template(name)
        subject = " ".join(_block(template, "subject", values).split())  # one header line
        return MailText(subject, _block(template, "body", values), None)
