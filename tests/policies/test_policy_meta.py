"""Pack metadata: names, descriptions, levels per environment, catalogue coverage, generated files."""

from __future__ import annotations

import json
import re

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policies import gen_compliance
from policies.pack import (
    CATALOGUE,
    CATALOGUE_IDS,
    CONFIG_DIR,
    ENVIRONMENTS,
    SEED_DEFECTS,
    SPECS,
    build_policies,
    environment_for_stack,
    exemption_for,
    initial_config,
)

POLICIES = build_policies()
NAMES = [p.name for p in POLICIES]


def test_policy_names_are_unique_and_prefixed() -> None:
    assert len(NAMES) == len(set(NAMES))
    groups = {"foundry", "aks", "registry", "keyvault", "storage", "network", "k8s", "gpu", "cost", "ops", "edge",
              "serving", "reach", "identity", "conflict", "pack"}
    for name in NAMES:
        assert re.fullmatch(r"slm-[a-z0-9]+(-[a-z0-9]+)+", name), name
        assert name.split("-")[1] in groups, name


def test_descriptions_are_sentences() -> None:
    for p in POLICIES:
        assert not p.description[0].islower() or p.description.startswith("vLLM"), p.name
        assert p.description.endswith("."), p.name


def test_every_policy_ships_advisory_in_code() -> None:
    assert {p.enforcement_level for p in POLICIES} == {EnforcementLevel.ADVISORY}


def test_every_policy_has_an_exemption_schema_requiring_a_reason() -> None:
    for p in POLICIES:
        assert p.config_schema is not None
        exempt = p.config_schema.properties["exempt"]
        assert exempt["items"]["required"] == ["pattern", "reason"], p.name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_policy_has_a_level_in_every_config_file(env: str) -> None:
    config = json.loads((CONFIG_DIR / f"{env}.json").read_text())
    assert sorted(config) == sorted(NAMES)
    for name, entry in config.items():
        level = entry if isinstance(entry, str) else entry["enforcementLevel"]
        assert level in {"advisory", "mandatory", "disabled"}, (env, name)


def test_local_is_advisory_and_levels_follow_the_catalogue() -> None:
    by_name = {s.name: s for s in SPECS}
    for spec in SPECS:
        assert spec.level("local") != "mandatory", spec.name
    assert [by_name["slm-aks-local-accounts"].level(e) for e in ENVIRONMENTS] == [
        "advisory", "advisory", "mandatory", "mandatory"]
    assert [by_name["slm-foundry-private-endpoint"].level(e) for e in ENVIRONMENTS] == [
        "disabled", "disabled", "advisory", "mandatory"]


def test_config_properties_are_declared_in_each_schema() -> None:
    schemas = {p.name: p.config_schema.properties for p in POLICIES if p.config_schema}
    for env in ENVIRONMENTS:
        for name, entry in json.loads((CONFIG_DIR / f"{env}.json").read_text()).items():
            if isinstance(entry, dict):
                assert set(entry) - {"enforcementLevel"} <= set(schemas[name]), (env, name)


def test_catalogue_coverage() -> None:
    assert len(CATALOGUE_IDS) == 60
    implemented = [i for i in CATALOGUE_IDS if isinstance(CATALOGUE.get(i), tuple) and CATALOGUE[i]]
    assert len(implemented) >= 50
    for cid in CATALOGUE_IDS:
        entry = CATALOGUE.get(cid)
        assert (isinstance(entry, tuple) and set(entry) <= set(NAMES)) or (isinstance(entry, str) and entry), cid
    groups = {cid.split("-")[0] for cid in implemented}
    assert groups == {"AIF", "AKS", "ACR", "KV", "STG", "NET", "K8S", "GPU", "OPS", "EDGE"}


def test_every_seed_defect_has_a_lint_or_a_reason() -> None:
    assert sorted(SEED_DEFECTS, key=lambda d: int(d[1:])) == [f"D{i}" for i in range(1, 14)]
    for did, entry in SEED_DEFECTS.items():
        assert (isinstance(entry, tuple) and set(entry) <= set(NAMES)) or isinstance(entry, str), did


def test_stack_policies_are_stack_validation_policies() -> None:
    by_name = {p.name: p for p in POLICIES}
    for spec in SPECS:
        kind = StackValidationPolicy if spec.stack_rule is not None else ResourceValidationPolicy
        assert isinstance(by_name[spec.name], kind)


def test_generated_config_and_compliance_doc_are_up_to_date() -> None:
    assert gen_compliance.stale() == [], "run: python -m policies.gen_compliance --write"


def test_initial_config_follows_the_stack_name() -> None:
    assert environment_for_stack("organization/slm-platform/prod") == "prod"
    assert environment_for_stack("staging") == "staging"
    assert environment_for_stack("feature-x") == "prod"  # unknown stacks fail closed
    prod = initial_config("prod")
    assert prod is not None
    assert prod["slm-storage-no-public-blob"] == EnforcementLevel.MANDATORY
    assert prod["slm-gpu-pool-node-cap"]["maxGpuNodes"] == 8
    assert initial_config(None) is None


def test_exemptions_need_a_written_reason_and_match_the_whole_name() -> None:
    cfg = {"exempt": [{"pattern": "dcgm-.*", "reason": "device plugin needs hostPath /var/lib/kubelet"},
                      {"pattern": "tmp-.*", "reason": "tbd"}]}
    assert exemption_for(cfg, "dcgm-exporter") == ("dcgm-.*", "device plugin needs hostPath /var/lib/kubelet")
    assert exemption_for(cfg, "my-dcgm-exporter") is None
    assert exemption_for(cfg, "tmp-1") is None


def test_every_level_deviation_names_a_policy_and_its_levels_differ() -> None:
    """Issue 12.10: the catalogue deviations the compliance doc lists are real policies whose levels differ."""
    from policies.pack import LEVEL_DEVIATIONS

    levels = {s.name: s.levels for s in SPECS}
    for name, (catalogue, reason) in LEVEL_DEVIATIONS.items():
        assert name in levels
        assert not catalogue.startswith(levels[name]), (name, catalogue)
        assert len(reason) > 40
    assert levels["slm-gpu-pool-node-cap"] == "M/M/M"
    assert levels["slm-cost-monthly-budget"] == levels["slm-gpu-pool-priority"] == "A/M/M"


def test_type_tokens_are_defined_in_one_place() -> None:
    """Issue 16: the rules match type tokens from policies/rules/tokens.py only; no module keeps its own copy
    (a typo in one copy made a rule silently match nothing, as slm-edge-iot-hub once did)."""
    from pathlib import Path

    from policies.rules import tokens

    rules = Path(tokens.__file__).parent
    own = re.compile(r'^[A-Z][A-Z0-9_]*: Final = "(azure-native:|kubernetes:[a-z]|pulumi)', re.M)
    assert [p.name for p in sorted(rules.glob("*.py")) if p.name != "tokens.py" and own.search(p.read_text())] == []
    values = [v for k, v in vars(tokens).items() if k.isupper()]
    assert len(values) == len(set(values)), "one name per token"
