"""Text ready for translation: one gettext catalog ("microlend"), English first.

Templates mark their words with `{{ _("...") }}`; `install_i18n` adds Jinja2's i18n
extension and the catalog for one language. Without a compiled catalog for that
language (`locale/<lang>/LC_MESSAGES/microlend.mo`) the English text is shown as is.
Re-extract the template: see locale/README.md.
"""
from __future__ import annotations

import gettext
from pathlib import Path

import jinja2

DOMAIN = "microlend"
LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"


def install_i18n(env: jinja2.Environment, language: str = "en") -> None:
    """Add the i18n extension and the catalog for `language` (falling back to the English source text)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    translations = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[language], fallback=True)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
