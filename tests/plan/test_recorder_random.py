"""The mock answers random.RandomString as the random provider would: ``length`` characters of the enabled sets."""

from __future__ import annotations

import re

import pulumi
import pulumi_random as random

from slmctl.recorder import random_string, record


def test_the_answer_has_the_length_and_only_the_enabled_characters() -> None:
    value = random_string("models-name-suffix", {"length": 5.0, "upper": False, "special": False})
    assert re.fullmatch(r"[a-z0-9]{5}", value)
    assert re.fullmatch(r"[A-Z]{40}", random_string("x", {"length": 40, "lower": False, "numeric": False,
                                                          "special": False}))
    assert set(random_string("y", {"length": 64, "overrideSpecial": "_"})) - set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == set()


def test_a_program_sees_the_same_result_in_every_plan() -> None:
    def program() -> None:
        suffix = random.RandomString("suffix", length=5, upper=False, special=False)
        pulumi.export("name", suffix.result.apply(lambda s: f"slmdev-kv-{s}"))

    first, second = record(program).outputs["name"], record(program).outputs["name"]
    assert first == second
    assert re.fullmatch(r"slmdev-kv-[a-z0-9]{5}", first)
