"""Read an architecture written as text: the grammar of the command line and of ``Network.describe()``.

The grammar is generated from the registries (:func:`grammar`): block kinds from
:data:`~sigprop.theory.blocks.BLOCKS` with their declared parameters, activation names from
:data:`~sigprop.theory.activations.ACTIVATIONS`. A VALUE is a number, or a name, which becomes a SymPy symbol.

Example
-------
>>> from sigprop.theory import parse
>>> parse("20*residual(dense(relu,sw2=2),beta=0.5)").depth
20
>>> parse("2*(dense(tanh), dense(linear))").describe()
'2*(dense(tanh,sw2=1,sb2=0),dense(linear,sw2=1,sb2=0))'
"""
from __future__ import annotations

import re
import sys

import sympy as sp
from sympy.parsing.sympy_parser import auto_number, auto_symbol, parse_expr

from .activations import ACTIVATIONS, FAMILIES, get_activation
from .blocks.params import format_number
from .blocks import BLOCKS
from .network import MAX_DEPTH, Network

#: parentheses and block arguments nest at most this deep
MAX_NESTING = 50

_TOKEN = re.compile(r"\s*(?:(?P<num>[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[*,()=/^+-]))", re.ASCII)

#: functions (and the constant π) a VALUE expression may use
_VALUE_FUNCTIONS = {"sqrt": sp.sqrt, "exp": sp.exp, "log": sp.log, "pi": sp.pi}
#: names a VALUE may not use as a parameter's symbol: the quantities of sigprop's formulas (a parameter m would be
#: the input's mean m in the maps), and SymPy's E and I
RESERVED = frozenset({"p", "q", "m", "c", "k", "x", "p_a", "p_b", "p_ab", "q_a", "q_b", "q_ab", "m_a", "m_b", "q_1",
                      "q_2", "delta", "G_ab", "G_aa", "G_bb", "rho_out", "E", "I"})
#: in a VALUE, the number of top-level blocks whose parameters use it (β = 1/√L in a depth-L ResNet)
DEPTH_SYMBOL = sp.Symbol("L", real=True)


_TRANSFORMATIONS = (auto_symbol, auto_number)
_FLOAT_MAX = sp.Float(sys.float_info.max)
_PARSE_GLOBALS = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational, "Symbol": sp.Symbol}


class ArchitectureError(ValueError):
    """The architecture text does not follow the grammar (the message says where)."""


def parse(text: str) -> Network:
    """Parse ``text`` into a :class:`~sigprop.theory.network.Network` (grammar: :func:`grammar`)."""
    if not isinstance(text, str) or not text.strip():
        raise ArchitectureError(f"architecture={text!r} is empty; example: '50*dense(tanh,sw2=2.5,sb2=0.05)'")
    net = _Parser(text).parse()
    if DEPTH_SYMBOL in net.free_symbols:        # L: how many top-level blocks use it
        n = sum(DEPTH_SYMBOL in b.free_symbols for b in net.blocks)
        net = net.subs({DEPTH_SYMBOL: n})
    return net


def parse_activation(text: str):
    """Read an activation written as the grammar writes it: ``tanh``, ``leaky_relu(a=0.2)``, ``affine(erf,b=2)``."""
    if not isinstance(text, str) or not text.strip():
        raise ArchitectureError(f"activation={text!r} is empty; example: 'leaky_relu(a=0.2)'")
    parser = _Parser(text)
    act = parser.activation()
    if parser.i != len(parser.tokens):
        raise parser.error("expected the end of the activation")
    return get_activation(act)


#: signatures up to this long share one column for the summaries
HEAD_COLUMN = 60


def grammar(activations: bool = True) -> str:
    """The architecture grammar, generated from the registered block kinds and activations.

    A block whose signature is longer than ``HEAD_COLUMN`` has its summary on the next line.

    >>> print(grammar().splitlines()[2])
    atom     := dense(ACT [,sw2=V] [,sb2=V] [,width=V] [,init=he|glorot|lecun|selu] [,weights=gaussian|orthogonal|looks_linear])
    >>> print(grammar().splitlines()[3].strip())
    phi(W x + b), W_ij ~ N(0, sw2/n_in), b_i ~ N(0, sb2)
    """
    heads = [(_signature(cls), cls.summary) for cls in BLOCKS.values()]
    rows = [("network", ":=", 'item ("," item)*', "blocks in order, from the input"),
            ("item", ":=", '[N "*"] atom', "N repetitions (N a positive integer)")]
    rows += [("atom" if i == 0 else "", ":=" if i == 0 else " |", h, summary) for i, (h, summary) in enumerate(heads)]
    rows.append(("", " |", '"(" network ")"', "a group (repeat it with N*)"))
    width = max(len(head) for _, _, head, _ in rows if len(head) <= HEAD_COLUMN) + 2
    lines = []
    for name, op, head, text in rows:
        if len(head) < width:
            lines.append(f"{name:8s} {op} {head:{width}s}{text}")
        else:
            lines += [f"{name:8s} {op} {head}", " " * (12 + width) + text]
    if activations:
        lines += _wrap("ACT", activation_words())
    lines.append(f"{'V':8s} := a number, a name (a SymPy symbol: theory only), or an expression of them with "
                 "+ - * / ^ sqrt exp log pi;")
    lines.append(f"{'':12s}L in a V is the number of top-level blocks using it: 20*residual(...,beta=1/sqrt(L));")
    lines.append(f"{'':12s}reserved names: {' '.join(sorted(RESERVED - {'E', 'I'}, key=str.lower))}")
    defaults = {p.name: p.default for cls in BLOCKS.values() for p in cls.params()
                if not p.required and p.kind not in ("choice", "blocks")}
    bare = [cls.kind for cls in BLOCKS.values() if not any(p.positional for p in cls.params())]
    lines.append("defaults: " + ", ".join(f"{k}={format_number(sp.sympify(v))}" for k, v in defaults.items()))
    if bare:
        lines.append(f"with every parameter at its default, {', '.join(bare)} may be written bare")
    lines.append("a choice may be written by its value alone: batchnorm(eval) is batchnorm(mode=eval)")
    return "\n".join(lines)


def activation_words() -> list:
    """The activation alternatives of the grammar: plain names, then families with their parameters."""
    plain = sorted(n for n in ACTIVATIONS if n not in FAMILIES)
    fams = []
    for name in sorted(FAMILIES):
        params = FAMILIES[name].params
        acts = ["ACT" for p in params if p.kind == "activation"]
        keys = [f"{p.name}=V" for p in params if p.kind != "activation"]
        inner = ",".join(acts) + "".join(f" [,{k}]" if acts or i else f"[{k}]" for i, k in enumerate(keys))
        fams.append(f"{name}({inner})")
    return plain + fams


def _wrap(head: str, words: list, width: int = 110) -> list:
    """``head := a | b | …`` folded into lines of at most ``width`` characters."""
    lines, line = [], f"{head:8s} := {words[0]}"
    for word in words[1:]:
        if len(line) + len(word) + 3 > width:
            lines.append(line + " |")
            line = " " * 12 + word
        else:
            line += " | " + word
    lines.append(line)
    return lines


def _signature(cls) -> str:
    positional = ["ACT" if p.kind == "activation" else "network" for p in cls.params() if p.positional]
    value = {"choice": lambda p: "|".join(p.choices), "blocks": lambda p: "item", "size": lambda p: "N|inf"}
    keywords = [f"[,{p.name}={value.get(p.kind, lambda p: 'V')(p)}]" for p in cls.params() if not p.positional]
    if not positional and keywords:
        keywords[0] = keywords[0].replace("[,", "[", 1)
    return f"{cls.kind}({','.join(positional)}{''.join((' ' if positional or i else '') + k for i, k in enumerate(keywords))})"


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
        self.i, self.nesting = 0, 0

    def error(self, what):
        tok = self.tokens[self.i] if self.i < len(self.tokens) else ("end", "end of text", len(self.text))
        return ArchitectureError(f"architecture {_short(self.text)!r}: {what}, found {tok[1]!r} at position {tok[2]}")

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
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"nesting deeper than {MAX_NESTING} levels is not allowed")
        blocks = self.item()
        while self.peek(",") and not self._keyword_ahead():
            self.i += 1
            blocks += self.item()
            if len(blocks) > MAX_DEPTH:
                raise self.error(f"more than {MAX_DEPTH} blocks are not allowed (sigprop.theory.network.MAX_DEPTH)")
        self.nesting -= 1
        return Network(tuple(blocks))

    def _keyword_ahead(self):
        t = self.tokens
        return self.i + 2 < len(t) and t[self.i + 1][0] == "name" and t[self.i + 2][1] == "="

    def item(self):
        count = 1
        tok = self.peek()
        if tok and tok[0] == "num" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "*":
            if not re.fullmatch(r"[0-9]+", tok[1], re.ASCII) or int(tok[1]) < 1:
                raise self.error("a repetition count must be an integer >= 1")
            count = int(tok[1])
            if count > MAX_DEPTH:
                raise self.error(f"a repetition count above {MAX_DEPTH} is not allowed "
                                 "(sigprop.theory.network.MAX_DEPTH)")
            self.i += 2
        blocks = self.atom()
        if count * len(blocks) > MAX_DEPTH:
            raise self.error(f"more than {MAX_DEPTH} blocks are not allowed (sigprop.theory.network.MAX_DEPTH)")
        return list(count * blocks)

    def atom(self):
        tok = self.peek()
        if tok and tok[1] == "(":
            self.i += 1
            net = self.network()
            self.expect(")")
            return net.blocks
        if not tok or tok[0] != "name" or tok[1].lower() not in BLOCKS:
            raise self.error(f"expected a block: {', '.join(f'{k}(...)' for k in BLOCKS)} or (...)")
        cls = BLOCKS[tok[1].lower()]
        self.i += 1
        if not self.peek("(") and not any(p.positional for p in cls.params()):
            return self._make(cls, {}, tok)          # a bare word: every parameter at its default
        self.expect("(")
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"nesting deeper than {MAX_NESTING} levels is not allowed")
        args = {}
        positional = [p for p in cls.params() if p.positional]
        for n, p in enumerate(positional):
            if n:
                self.expect(",")
            if p.kind == "activation":
                args[p.name] = self.activation()
            else:                                   # "blocks": a nested network
                args[p.name] = self.network().blocks
        args.update(self.keywords(cls, first=not positional))
        self.nesting -= 1
        return self._make(cls, args, tok)

    def _make(self, cls, args, tok):
        try:
            return (cls(**args),)
        except ArchitectureError:
            raise
        except ValueError as exc:
            raise ArchitectureError(f"architecture {_short(self.text)!r}: {tok[1]} at position {tok[2]}: {exc}") from None

    def activation(self):
        """ACT := name | family "(" [ACT ","] key=V ("," key=V)* ")"."""
        tok = self.peek()
        if not tok or tok[0] != "name" or (self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "="):
            raise self.error("expected an activation name")
        name = tok[1].lower()
        self.i += 1
        if not self.peek("("):
            return name                             # the block names it; an unknown name is reported there
        family = FAMILIES.get(name)
        if family is None:
            self.i -= 1
            raise self.error(f"{name} takes no parameters; activations with parameters: {', '.join(sorted(FAMILIES))}")
        self.expect("(")
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"nesting deeper than {MAX_NESTING} levels is not allowed")
        values = {}
        positional = [p for p in family.params if p.kind == "activation"]
        for n, p in enumerate(positional):
            if n:
                self.expect(",")
            values[p.name] = self.activation()
        names = [p.name for p in family.params if p.kind != "activation"]
        while self.peek(",") or (not positional and not values and self.peek() and self.peek()[0] == "name"):
            if self.peek(","):
                self.i += 1
            values.update(self._keyword(name, names, values))
        self.expect(")")
        self.nesting -= 1
        try:
            return family(**values)
        except ValueError as exc:
            raise ArchitectureError(f"architecture {_short(self.text)!r}: {name} at position {tok[2]}: {exc}") from None

    def _keyword(self, owner, names, given, choices=None, sequences=()):
        """key=V; for a key in ``choices`` (key -> allowed names), V is one of those names, kept as a string; for
        a key in ``sequences``, V is an item (``dense(linear)``, ``2*dense(relu)``, ``(dense(relu),act(tanh))``)."""
        name = self.peek()
        if not name or name[0] != "name":
            raise self.error("expected a keyword")
        if name[1] not in names:
            raise self.error(f"{owner}() takes the keywords {', '.join(names)}")
        if name[1] in given:
            raise self.error(f"keyword {name[1]} is given twice")
        self.i += 1
        self.expect("=")
        val = self.peek()
        if name[1] in sequences:
            return {name[1]: tuple(self.item())}
        if choices and name[1] in choices:
            if not val or val[0] != "name" or val[1].lower() not in choices[name[1]]:
                raise self.error(f"{name[1]} takes one of: {', '.join(choices[name[1]])}")
            self.i += 1
            return {name[1]: val[1].lower()}
        return {name[1]: self.value()}

    def value(self):
        """V := a number, a name (a real SymPy symbol, not one of :data:`RESERVED`) or an arithmetic expression of
        them (+ - * / ^ and sqrt, exp, log, pi), up to the next ',' or ')' outside its own parentheses."""
        start, depth, names = self.i, 0, {}
        while self.i < len(self.tokens):
            kind, text, _ = self.tokens[self.i]
            if text in (",", "=") and depth == 0 or text == ")" and depth == 0:
                break
            if kind == "name":
                low = text.lower()
                if low == "inf" and self.i == start and self.i + 1 < len(self.tokens) and \
                        self.tokens[self.i + 1][1] in (",", ")"):
                    self.i += 1
                    return sp.oo                    # a size (e.g. batch=inf); other parameters refuse it
                if low in ("inf", "nan", "oo", "infinity", "zoo"):
                    raise self.error("expected a finite number or a symbol name")
                if text in RESERVED:
                    what = ("the activation's variable" if text == "x" else "SymPy's constant" if text in "EI" else
                            "a quantity of sigprop's formulas")
                    raise self.error(f"the name {text!r} is {what}: give the parameter another name, e.g. {text}0")
                names[text] = _VALUE_FUNCTIONS.get(text, sp.Symbol(text, real=True))
            depth += (text == "(") - (text == ")")
            self.i += 1
        if self.i == start:
            raise self.error("expected a finite number or a symbol name")
        first, last = self.tokens[start], self.tokens[self.i - 1]
        source = self.text[first[2]:last[2] + len(last[1])]
        try:
            expr = parse_expr(source.replace("^", "**"), local_dict=names, global_dict=_PARSE_GLOBALS,
                              transformations=_TRANSFORMATIONS)
        except Exception:                           # SymPy's parser raises many kinds: say where, not which
            self.i = start
            raise self.error(f"{source!r} is not a number, a name or an arithmetic expression of them") from None
        if isinstance(expr, sp.Basic) and callable(expr) and not isinstance(expr, sp.Expr) or not isinstance(
                expr, sp.Expr) or expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            self.i = start
            raise self.error(f"{source!r} is not a finite number or an expression of symbols")
        if any(abs(f) > _FLOAT_MAX for f in expr.atoms(sp.Float)):
            self.i = start
            raise self.error(f"{source!r} is beyond float64 (largest {_FLOAT_MAX:.4g}): give a finite number")
        return expr

    def _bare_choice(self, choices: dict, given: dict):
        """A choice written by its value alone (``batchnorm(eval)``): {name: value} when the next word is not a
        keyword and is the value of exactly one choice parameter not given yet; None otherwise."""
        tok = self.peek()
        if not tok or tok[0] != "name" or (self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "="):
            return None
        owners = [name for name, values in choices.items() if tok[1].lower() in values and name not in given]
        if len(owners) != 1:
            return None
        self.i += 1
        return {owners[0]: tok[1].lower()}

    def keywords(self, cls, first: bool):
        names = [p.name for p in cls.params() if not p.positional]
        choices = {p.name: p.choices for p in cls.params() if p.kind == "choice"}
        sequences = [p.name for p in cls.params() if p.kind == "blocks" and not p.positional]
        kwargs = {}
        while self.peek(",") or (first and not kwargs and self.peek() and self.peek()[0] == "name"):
            if self.peek(","):
                self.i += 1
            bare = self._bare_choice(choices, kwargs)
            kwargs.update(bare or self._keyword(cls.kind, names, kwargs, choices, sequences))
        self.expect(")")
        return kwargs


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
