"""Settings-time rules for fleets: memory fit, device classes, delivery/OS, pinning, tag syntax."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.domain import DeviceClass
from stacks.settings import EnvironmentSettings
from tests.edge.fleets import OLLAMA_IMAGE, make_settings, settings_dict


def _fleet(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes",
                               "engine": "ollama", "devices": ["d1"], "image": OLLAMA_IMAGE}
    return {**base, **over}


class TestDefaults:
    def test_device_memory_keeps_a_system_reserve_and_headroom(self) -> None:
        assert DeviceClass(architecture="arm64", memory_gib=4).model_memory_gib == 2.7
        assert DeviceClass(architecture="amd64", os="windows", memory_gib=16).model_memory_gib == 10.8
        assert DeviceClass(architecture="amd64", memory_gib=8, system_reserved_gib=2).model_memory_gib == 5.4

    def test_kubeconfig_key_defaults_to_the_fleet_name(self) -> None:
        fleet = make_settings().edge.fleets["shop"]
        assert fleet.kubeconfig_key("shop") == "slm-platform:edgeKubeconfig-shop"

    def test_artifact_pin_is_the_gguf_tag_and_sha(self) -> None:
        s = make_settings()
        assert s.edge.fleets["shop"].artifact_pin("phi-4-mini", s.models["phi-4-mini"]) == (
            "phi4-mini:3.8b-q4_K_M", "a" * 64)

    def test_the_sample_environment_is_valid(self) -> None:
        assert set(make_settings().edge.fleets) == {"shop", "plant", "desk"}


class TestErrors:
    def test_oversized_model_names_the_need_and_a_class_that_fits(self) -> None:
        with pytest.raises(ValidationError) as info:
            make_settings(tiny=_fleet(device_class="pi4"))
        text = str(info.value)
        assert "edge.fleets.tiny: phi-4-mini (q4_k_m) needs 2.16 GiB of weights" in text
        assert "more than the 2.7 GiB device class 'pi4'" in text
        assert "a device class that fits: nuc" in text

    def test_oversized_context_suggests_a_context_that_fits(self) -> None:
        doc = settings_dict(big=_fleet(context_tokens=131072))
        with pytest.raises(ValidationError, match=r"context_tokens <= \d+"):
            EnvironmentSettings.model_validate(doc)

    def test_a_larger_quantization_that_does_not_fit_suggests_a_smaller_one(self) -> None:
        doc = settings_dict(small=_fleet(device_class="pi4"))
        doc["edge"]["device_classes"]["pi4"]["memory_gib"] = 5
        doc["models"]["phi-4-mini"]["artifacts"]["gguf"]["quantization"] = "q8_0"
        with pytest.raises(ValidationError, match="a smaller quantization: q4_k_m"):
            EnvironmentSettings.model_validate(doc)

    def test_unknown_device_class_lists_the_defined_ones(self) -> None:
        with pytest.raises(ValidationError, match=r"'rpi5' is not defined; use one of: laptop, mac, nuc, pi4"):
            make_settings(xx=_fleet(device_class="rpi5"))

    def test_foundry_local_on_linux_is_refused_with_d8(self) -> None:
        with pytest.raises(ValidationError, match=r"'foundry-local' does not run on linux.*\(D8\)"):
            make_settings(xx={"device_class": "nuc", "model": "phi-4-mini", "delivery": "foundry-local",
                             "devices": ["d"]})

    def test_llamacpp_needs_the_blob_sha256(self) -> None:
        doc = settings_dict(xx=_fleet(engine="llamacpp"))
        doc["models"]["phi-4-mini"]["artifacts"]["gguf"].pop("sha256")
        with pytest.raises(ValidationError, match="llamacpp loads the GGUF blob by its sha256"):
            EnvironmentSettings.model_validate(doc)

    def test_onnx_engine_without_cpu_variant_is_refused(self) -> None:
        doc = settings_dict(xx=_fleet(engine="onnx-genai", image=None))
        doc["models"]["phi-4-mini"]["artifacts"]["onnx"].pop("cpu_variant")
        with pytest.raises(ValidationError, match="has no cpu_variant"):
            EnvironmentSettings.model_validate(doc)

    def test_prod_requires_a_sha256_and_digest_pinned_images(self) -> None:
        doc = settings_dict(xx=_fleet(image="ollama/ollama:0.12.6"))
        doc["tier"] = "prod"
        doc["models"]["phi-4-mini"]["artifacts"]["gguf"].pop("sha256")
        with pytest.raises(ValidationError) as info:
            EnvironmentSettings.model_validate(doc)
        text = str(info.value)
        assert "edge.fleets.xx.artifact_sha256: prod fleets load only verified weights and an Ollama tag can move" in text
        assert "edge.fleets.xx.image: 'ollama/ollama:0.12.6' is not pinned by digest" in text
        assert "edge.fleets.desk.foundry_model: prod pins a versioned Foundry Local model id" in text

    def test_selector_values_cannot_break_the_twin_condition(self) -> None:
        with pytest.raises(ValidationError, match=r"device_selector.site: \"x' OR '1'='1\" must be"):
            make_settings(xx=_fleet(delivery="iot-edge", devices=[], device_selector={"site": "x' OR '1'='1"}))

    def test_the_fleet_tag_key_is_reserved(self) -> None:
        with pytest.raises(ValidationError, match="not be 'slmFleet'"):
            make_settings(xx=_fleet(delivery="iot-edge", device_selector={"slmFleet": "other"}))
