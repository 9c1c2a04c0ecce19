"""consensus.dispatch routes every action type to its own handler method, and both interpreters
(the simulator's SimNode, the replica's ActionRunner) have a method for every type."""

from __future__ import annotations

import re
import typing

import pytest

from consensus.actions import Action
from consensus.dispatch import ActionHandler, dispatch
from consensus.simulation.node import SimNode

ACTION_TYPES: tuple[type, ...] = typing.get_args(Action)
HANDLER_METHODS = sorted(name for name in vars(ActionHandler) if name.startswith("on_"))


def method_for(kind: type) -> str:
    return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()


class NameOfMethod:
    """A handler whose every method returns its own name."""

    def __getattr__(self, name: str) -> typing.Callable[[Action], str]:
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda action: name


def test_the_union_and_the_protocol_list_the_same_action_types() -> None:
    assert len(ACTION_TYPES) == 12
    assert sorted(method_for(kind) for kind in ACTION_TYPES) == HANDLER_METHODS


@pytest.mark.parametrize("kind", ACTION_TYPES, ids=lambda k: k.__name__)
def test_dispatch_routes_each_action_type_to_its_method(kind: type) -> None:
    action = kind.__new__(kind)  # only the type matters to dispatch
    assert dispatch(action, typing.cast(ActionHandler[str], NameOfMethod())) == method_for(kind)


def test_dispatch_refuses_what_is_not_an_action() -> None:
    with pytest.raises(AssertionError):
        dispatch(typing.cast(Action, object()), typing.cast(ActionHandler[str], NameOfMethod()))


@pytest.mark.parametrize("method", HANDLER_METHODS)
def test_the_simulated_node_handles_every_action_type(method: str) -> None:
    assert callable(getattr(SimNode, method, None))
