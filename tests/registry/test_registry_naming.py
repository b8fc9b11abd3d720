"""components._naming: physical names fail loudly instead of being truncated (pure, no mocks)."""

from __future__ import annotations

import pytest

from components._naming import AZURE_NAME_RULES, azure_name


class TestValidNames:
    @pytest.mark.parametrize(("kind", "parts", "separator", "expected"), [
        ("storage_account", ("slmprod", "weights"), "", "slmprodweights"),
        ("container_registry", ("SLMProd", "acr"), "", "slmprodacr"),
        ("key_vault", ("slmprod", "kv"), "-", "slmprod-kv"),
        ("cognitive_services", ("slmprod", "foundry"), "-", "slmprod-foundry"),
        ("blob_container", ("phi4-mini",), "", "phi4-mini"),
    ])
    def test_parts_are_joined_and_lowercased(self, kind, parts, separator, expected) -> None:
        assert azure_name(kind, *parts, separator=separator) == expected

    @pytest.mark.parametrize("kind", sorted(AZURE_NAME_RULES))
    def test_the_longest_allowed_name_is_accepted_unchanged(self, kind) -> None:
        longest = "a" * AZURE_NAME_RULES[kind].max_length
        assert azure_name(kind, longest) == longest


class TestErrors:
    @pytest.mark.parametrize("kind", sorted(AZURE_NAME_RULES))
    def test_one_character_too_many_is_an_error_not_a_truncation(self, kind) -> None:
        rule = AZURE_NAME_RULES[kind]
        with pytest.raises(ValueError, match=rf"is {rule.max_length + 1} characters; Azure allows "
                                             rf"{rule.min_length}-{rule.max_length}\. Shorten a part"):
            azure_name(kind, "a" * (rule.max_length + 1))

    def test_too_short_is_an_error(self) -> None:
        with pytest.raises(ValueError, match=r"container_registry name 'acr' is 3 characters; Azure allows 5-50"):
            azure_name("container_registry", "acr")

    @pytest.mark.parametrize(("kind", "name"), [
        ("storage_account", "slm-prod"),
        ("container_registry", "slm_prod"),
        ("key_vault", "1slmprod"),
        ("key_vault", "slm--prod"),
        ("key_vault", "slmprod-"),
        ("cognitive_services", "-slmprod"),
        ("blob_container", "phi4--mini"),
    ])
    def test_characters_azure_refuses_are_an_error_naming_the_rule(self, kind, name) -> None:
        with pytest.raises(ValueError, match=rf"{kind} name '{name}' is not a valid Azure name: "):
            azure_name(kind, name)

    def test_an_unknown_kind_lists_the_known_ones(self) -> None:
        with pytest.raises(ValueError, match=r"unknown Azure name kind 'vm'; use one of: blob_container, "
                                             r"cognitive_services, container_registry, key_vault, storage_account"):
            azure_name("vm", "x")
