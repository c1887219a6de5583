"""print query words (the API's boolean stack language) and .proplist filtering."""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["Query", "QueryError", "apply_proplist"]

_TRUE = {"yes", "true"}
_FALSE = {"no", "false"}

Row = dict[str, str]
Op = Callable[[list[bool], Row], None]


class QueryError(ValueError):
    pass


def _same(have: str, want: str) -> bool:
    # Clients write ?running=yes while v7 rows say running=true: compare booleans by meaning.
    if have == want:
        return True
    if have in _TRUE or have in _FALSE:
        return (have in _TRUE and want in _TRUE) or (have in _FALSE and want in _FALSE)
    return False


def _less(have: str | None, want: str) -> bool:
    if have is None:
        return False
    try:
        return int(have) < int(want)
    except ValueError:
        return have < want


def _greater(have: str | None, want: str) -> bool:
    if have is None:
        return False
    try:
        return int(have) > int(want)
    except ValueError:
        return have > want


def _compile(word: str) -> Op:
    body = word[1:]
    if body.startswith("#"):
        ops = body[1:]

        def stack_ops(stack: list[bool], row: Row) -> None:
            for ch in ops:
                if ch == "!":
                    stack.append(not stack.pop())
                elif ch == "&":
                    b, a = stack.pop(), stack.pop()
                    stack.append(a and b)
                elif ch == "|":
                    b, a = stack.pop(), stack.pop()
                    stack.append(a or b)
                elif ch == ".":
                    stack.append(stack[-1])
                elif ch.isdigit():
                    stack.append(stack[int(ch)])
                else:
                    raise QueryError(f"unknown query operation {ch!r}")

        return stack_ops
    if body.startswith("-"):
        name = body[1:]
        return lambda stack, row: stack.append(name not in row or row[name] == "")
    if body.startswith("<") or body.startswith(">"):
        name, _, value = body[1:].partition("=")
        cmp = _less if body[0] == "<" else _greater
        return lambda stack, row: stack.append(cmp(row.get(name), value))
    if body.startswith("="):  # ?=name=x is the same as ?name=x
        body = body[1:]
    name, eq, value = body.partition("=")
    if not eq:
        return lambda stack, row: stack.append(name in row)
    return lambda stack, row: stack.append(
        name in row and _same(row[name], value) if value != "" else row.get(name, "") == ""
    )


class Query:
    """Compiled `?…` words; an empty query matches everything."""

    def __init__(self, words: Sequence[str]) -> None:
        self._ops = [_compile(w) for w in words]

    def __bool__(self) -> bool:
        return bool(self._ops)

    def match(self, row: Row) -> bool:
        if not self._ops:
            return True
        stack: list[bool] = []
        try:
            for op in self._ops:
                op(stack, row)
        except IndexError as exc:
            raise QueryError("query stack underflow") from exc
        return all(stack)


def apply_proplist(row: Row, proplist: Sequence[str] | None) -> Row:
    if proplist is None:
        return row
    return {k: row[k] for k in proplist if k in row}
