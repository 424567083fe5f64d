"""Read an architecture written as text, the grammar of the command line and of :meth:`Network.describe`.

Grammar::

    network  := item ("," item)*
    item     := [INT "*"] atom
    atom     := "dense" "(" ACTIVATION ("," NAME "=" VALUE)* ")"          keywords sw2, sb2
              | "residual" "(" network ("," NAME "=" VALUE)* ")"         keywords alpha, beta
              | "(" network ")"
    VALUE    := a number, or a name (which becomes a SymPy symbol)

Example
-------
>>> from theory.parse import parse
>>> parse("20*residual(dense(relu,sw2=2),beta=0.5)").depth
20
>>> parse("2*(dense(tanh), dense(linear))").describe()
'dense(tanh,sw2=1,sb2=0),dense(linear,sw2=1,sb2=0),dense(tanh,sw2=1,sb2=0),dense(linear,sw2=1,sb2=0)'
"""
from __future__ import annotations

import re

import sympy as sp

from .blocks import Dense, Network, Residual

_TOKEN = re.compile(r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
                    r"|(?P<op>[*,()=]))")
_KEYWORDS = {"dense": ("sw2", "sb2"), "residual": ("alpha", "beta")}


class ArchitectureError(ValueError):
    """The architecture text does not follow the grammar (the message says where)."""


def parse(text: str) -> Network:
    """Parse ``text`` into a :class:`~theory.blocks.Network` (see the module docstring for the grammar)."""
    if not isinstance(text, str) or not text.strip():
        raise ArchitectureError(f"architecture={text!r} is empty; example: '50*dense(tanh,sw2=2.5,sb2=0.05)'")
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text):
        self.text, self.tokens, pos = text, [], 0
        while pos < len(text):
            mt = _TOKEN.match(text, pos)
            if not mt or mt.end() == pos:
                if text[pos:].strip() == "":
                    break
                bad = pos + len(text[pos:]) - len(text[pos:].lstrip())
                raise ArchitectureError(f"architecture {text!r}: unexpected character {text[bad]!r} "
                                        f"at position {bad}")
            kind = mt.lastgroup
            self.tokens.append((kind, mt.group(kind), mt.start(kind)))
            pos = mt.end()
        self.i = 0

    def error(self, what):
        tok = self.tokens[self.i] if self.i < len(self.tokens) else ("end", "end of text", len(self.text))
        return ArchitectureError(f"architecture {self.text!r}: {what}, found {tok[1]!r} at position {tok[2]}")

    def peek(self, value=None):
        if self.i >= len(self.tokens):
            return None
        tok = self.tokens[self.i]
        return tok if value is None or tok[1] == value else None

    def expect(self, value):
        if not self.peek(value):
            raise self.error(f"expected {value!r}")
        self.i += 1

    def parse(self):
        net = self.network()
        if self.i != len(self.tokens):
            raise self.error("expected ',' or the end")
        return net

    def network(self):
        blocks = self.item()
        while self.peek(",") and not self._keyword_ahead():
            self.i += 1
            blocks += self.item()
        return Network(tuple(blocks))

    def _keyword_ahead(self):
        t = self.tokens
        return self.i + 2 < len(t) and t[self.i + 1][0] == "name" and t[self.i + 2][1] == "="

    def item(self):
        count = 1
        tok = self.peek()
        if tok and tok[0] == "num" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "*":
            if not re.fullmatch(r"\d+", tok[1]) or int(tok[1]) < 1:
                raise self.error("a repetition count must be an integer >= 1")
            count = int(tok[1])
            self.i += 2
        return list(count * self.atom())

    def atom(self):
        tok = self.peek()
        if tok and tok[1] == "(":
            self.i += 1
            net = self.network()
            self.expect(")")
            return net
        if not tok or tok[0] != "name" or tok[1].lower() not in _KEYWORDS:
            raise self.error("expected a block: dense(...), residual(...) or (...)")
        kind = tok[1].lower()
        self.i += 1
        self.expect("(")
        if kind == "dense":
            act = self.peek()
            if not act or act[0] != "name":
                raise self.error("expected an activation name")
            self.i += 1
            kwargs = self.keywords(kind)
            return self.make(tok, lambda: Dense(act[1], **kwargs))
        branch = self.network()
        kwargs = self.keywords(kind)
        return self.make(tok, lambda: Residual(branch.blocks, **kwargs))

    def make(self, tok, construct):
        try:
            return Network((construct(),))
        except ArchitectureError:
            raise
        except ValueError as exc:
            raise ArchitectureError(f"architecture {self.text!r}: {tok[1]} at position {tok[2]}: {exc}") from None

    def keywords(self, kind):
        kwargs = {}
        while self.peek(","):
            self.i += 1
            name = self.peek()
            if not name or name[0] != "name":
                raise self.error("expected a keyword")
            if name[1] not in _KEYWORDS[kind]:
                raise self.error(f"{kind}() takes the keywords {', '.join(_KEYWORDS[kind])}")
            if name[1] in kwargs:
                raise self.error(f"keyword {name[1]} is given twice")
            self.i += 1
            self.expect("=")
            val = self.peek()
            if not val or val[0] not in ("num", "name") or val[1].lower() in ("inf", "nan", "oo", "infinity"):
                raise self.error("expected a finite number or a symbol name")
            self.i += 1
            kwargs[name[1]] = sp.sympify(val[1]) if val[0] == "num" else sp.Symbol(val[1], real=True)
        self.expect(")")
        return kwargs
