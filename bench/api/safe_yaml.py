"""The one YAML loader for every file and option we read (manifests, --config, presets, option values).

`yaml.safe_load` refuses `!!python` tags but not alias bombs: a few hundred bytes of nested `&a`/`*a`
references stand for billions of nodes, and whatever walks the result (hashing, JSON, copies) runs
out of memory or time. Here the document is composed first and its size with every alias expanded
is counted on the node graph (linear time, memoised); a document whose aliases add more than
`ALIAS_BUDGET` nodes, or refer to themselves, is refused before any object is built.
"""

from __future__ import annotations

from typing import Any

import yaml

#: nodes that aliases may add beyond the document's own (a shared default block reused a few times is fine)
ALIAS_BUDGET = 10_000


class AliasBombError(yaml.YAMLError):
    """Raised for a document whose aliases expand beyond the budget, or that is nested too deep to read
    (carries `problem` like PyYAML's errors)."""

    problem_mark = None

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


def _expanded_size(root: yaml.Node, limit: int) -> tuple[int, int]:
    """(size with aliases expanded, capped just above `limit`; number of distinct nodes)."""
    memo: dict[int, int] = {}
    active: set[int] = set()
    # iterative post-order walk: a deeply nested document must not hit Python's recursion limit
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            if isinstance(node, yaml.SequenceNode):
                kids = node.value
            elif isinstance(node, yaml.MappingNode):
                kids = [n for pair in node.value for n in pair]
            else:
                kids = []
            memo[key] = min(limit + 1, 1 + sum(memo[id(k)] for k in kids))
            continue
        if key in memo:
            continue
        if key in active:
            raise AliasBombError("an alias refers to the node that contains it (a recursive document)")
        active.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((k, False) for k in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((k, False) for pair in node.value for k in pair)
    return memo[id(root)], len(memo)


def load(text: str) -> Any:
    """`yaml.safe_load`, refusing alias bombs (AliasBombError, a yaml.YAMLError) before building objects."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise AliasBombError("it is nested deeper than it can be read (thousands of levels); flatten it") from None
        if node is None:
            return None
        distinct = len(text)  # an upper bound on the distinct nodes, so the cap can never be reached by them alone
        size, distinct = _expanded_size(node, distinct + ALIAS_BUDGET)
        if size - distinct > ALIAS_BUDGET:
            raise AliasBombError(
                f"its aliases (*name) expand to more than {ALIAS_BUDGET} extra nodes (an alias bomb); "
                "write the values out or use fewer nested aliases"
            )
        try:
            return loader.construct_document(node)
        except RecursionError:
            raise AliasBombError("it is nested deeper than it can be read (thousands of levels); flatten it") from None
    finally:
        loader.dispose()
