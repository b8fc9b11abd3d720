"""The AKS kubeconfig conversion to a non-interactive kubelogin login (what convert-kubeconfig -l azurecli does)."""

from __future__ import annotations

import pytest
import yaml

from components.kubeconfig import AKS_SERVER_APP_ID, login_modes, non_interactive
from slmctl.recorder import aks_exec_kubeconfig


def test_azure_answer_is_interactive_and_the_conversion_is_not() -> None:
    azure = aks_exec_kubeconfig("slmdev-aks")
    assert login_modes(azure) == ["devicecode"]
    converted = non_interactive(azure)
    assert login_modes(converted) == ["azurecli"]
    exec_cfg = yaml.safe_load(converted)["users"][0]["user"]["exec"]
    # The tenant and the device-code client are dropped: azurecli takes both from the CLI session.
    assert exec_cfg["args"] == ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_APP_ID]


def test_workload_identity_login_is_available_for_runners_with_a_federated_token() -> None:
    converted = non_interactive(aks_exec_kubeconfig("c"), login="workloadidentity")
    assert login_modes(converted) == ["workloadidentity"]


def test_clusters_contexts_and_other_users_are_kept() -> None:
    doc = yaml.safe_load(aks_exec_kubeconfig("c"))
    doc["users"].append({"name": "static", "user": {"token": "t0ken"}})
    converted = yaml.safe_load(non_interactive(yaml.safe_dump(doc)))
    assert converted["clusters"] == doc["clusters"]
    assert converted["current-context"] == "c"
    assert converted["users"][1] == {"name": "static", "user": {"token": "t0ken"}}


def test_a_kubelogin_user_without_server_id_is_refused_with_the_expected_id() -> None:
    doc = yaml.safe_load(aks_exec_kubeconfig("c"))
    doc["users"][0]["user"]["exec"]["args"] = ["get-token", "--login", "devicecode"]
    with pytest.raises(ValueError, match=AKS_SERVER_APP_ID):
        non_interactive(yaml.safe_dump(doc))


@pytest.mark.parametrize("text", ["", "just text", "kind: Pod\n"])
def test_a_document_that_is_not_a_kubeconfig_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a kubeconfig"):
        non_interactive(text)
