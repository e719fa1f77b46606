"""The torch-free algorithm catalogue and the registry of builders agree, model by model."""

import pytest

from training_runtime import catalogue, models


def test_every_registered_model_is_its_catalogue_entry_plus_a_builder():
    entries = {(e.scenario, e.name): e for e in catalogue.algorithms()}
    specs = {(s.scenario, s.name): s for s in models.specs()}

    assert list(entries) == list(specs)
    for key, spec in specs.items():
        entry = entries[key]
        assert (spec.input_size, spec.defaults, spec.metric, spec.description, spec.resize) == (
            entry.input_size, entry.defaults, entry.metric, entry.description, entry.resize)
        assert callable(spec.builder) and spec.head_prefixes


def test_defaults_and_names_are_the_catalogues():
    for scenario in catalogue.SCENARIOS:
        assert models.names(scenario) == catalogue.names(scenario)
        assert models.get(scenario).name == catalogue.get(scenario).name
        assert catalogue.get(scenario).metric == catalogue.METRICS[scenario]


@pytest.mark.parametrize("name", [["resnet18"], {"a": 1}, 3])
def test_a_name_that_is_not_a_string_is_an_unknown_model_not_a_crash(name):
    with pytest.raises(catalogue.UnknownModelError, match="known classification models"):
        catalogue.get("classification", name)
