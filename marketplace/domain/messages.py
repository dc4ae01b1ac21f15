"""Sentences for people, marked for translation where they are written, translated where they are shown.

`N_("The smallest loan is %(amount)s.", amount=...)` records the English message id
(babel extracts `N_` from Python, see babel.cfg) and its named values, and translates
nothing itself: the domain and the services know no language. The web layer
translates the id with the request's catalog, then fills in the values, so a
translator may move `%(amount)s` anywhere in the sentence. `str()` is the English.
`ngettext(singular, plural, n, ...)` is the same for a sentence that depends on a
count (the name is the one babel extracts with both forms); `n` is also `%(num)s`.

Like Jinja's newstyle gettext, the id is always %-formatted: a literal percent sign
is written `%%`. A value that is itself a `Message` (a field's name, a wait) is
translated with the sentence around it.
"""
from __future__ import annotations

import gettext as _gettext
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol

_EMPTY: Mapping[str, object] = MappingProxyType({})


class Catalog(Protocol):
    def gettext(self, message: str, /) -> str: ...
    def ngettext(self, singular: str, plural: str, n: int, /) -> str: ...


ENGLISH: Catalog = _gettext.NullTranslations()


@dataclass(frozen=True)
class Message:
    msgid: str
    params: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    plural: str | None = None
    n: int = 1
    # A text without values (a node's own error, a sentence marked elsewhere): translated when the
    # catalog knows it, never %-formatted (it may hold a bare %).
    literal: bool = False

    def translated(self, catalog: Catalog = ENGLISH) -> str:
        if self.literal:
            return catalog.gettext(self.msgid) if self.msgid else self.msgid
        values = {name: value.translated(catalog) if isinstance(value, Message) else value
                  for name, value in self.params.items()}
        if self.plural is None:
            return catalog.gettext(self.msgid) % values
        return catalog.ngettext(self.msgid, self.plural, self.n) % {"num": self.n, **values}

    def with_values(self, **params: object) -> Message:
        """The same message with (more) values, for a sentence chosen before its values are known."""
        return replace(self, params=MappingProxyType({**self.params, **params}))

    def __str__(self) -> str:
        return self.translated()


def N_(msgid: str, **params: object) -> Message:
    """Mark `msgid` for the catalog; `params` fill its %(name)s placeholders after translation."""
    return Message(msgid, MappingProxyType(dict(params)))


def ngettext(singular: str, plural: str, n: int, **params: object) -> Message:
    """Mark a message with a singular and a plural form, chosen by `n` in the reader's language."""
    return Message(singular, MappingProxyType(dict(params)), plural=plural, n=n)


def as_message(text: str | Message) -> Message:
    """A marked message as it is; a plain string translated if the catalog has it, never formatted."""
    return text if isinstance(text, Message) else Message(text, literal=True)
