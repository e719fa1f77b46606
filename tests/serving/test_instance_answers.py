"""An instance's answer to a micro-batch: one forward pass, each request's own filters, and a
broken image that fails alone."""

import pytest

from serving.instance import answer
from serving.transport import encode_image
from tests.evaluation_runs.test_detection_runs import (  # noqa: F401  (fixture)
    OPTIONS,
    detector_artifact,
    noise,
    png,
)
from tests.serving.conftest import png as noise_png


def request(image: bytes, min_score=0.0, top_k=5) -> dict:
    return {"request_id": "r", "image": encode_image(image), "min_score": min_score,
            "top_k": top_k}


def test_a_broken_image_fails_alone_and_each_request_keeps_its_filters(classifier_artifact):
    from training_runtime.predict import Predictor

    predictor = Predictor.load(classifier_artifact, "cpu")
    image = noise_png(7)
    (want,) = predictor.predict([image], top_k=3, min_score=0.0)
    floor = want[1]["score"]

    replies = answer(predictor, [request(image, top_k=3), request(b"\x89PNG broken"),
                                 request(image, min_score=floor, top_k=3),
                                 request(image, top_k=1)])

    assert [r["ok"] for r in replies] == [True, False, True, True]
    assert replies[1]["code"] == "invalid_image" and replies[1]["message"]
    assert [p["label"] for p in replies[0]["predictions"]] == [p["label"] for p in want]
    assert [p["score"] for p in replies[2]["predictions"]] == pytest.approx(
        [p["score"] for p in want if p["score"] >= floor])
    assert [p["label"] for p in replies[3]["predictions"]] == [want[0]["label"]]


def test_detection_answers_carry_boxes_and_respect_min_score(detector_artifact):  # noqa: F811
    from training_runtime.predict import Predictor

    predictor = Predictor.load(detector_artifact, "cpu")
    image = png(noise(3))
    (want,) = predictor.predict([image], min_score=0.0)
    assert want, "the untrained detector must find something for this test to mean anything"
    floor = want[len(want) // 2]["score"]

    everything, kept = answer(predictor, [request(image), request(image, min_score=floor)])

    assert [v for p in everything["predictions"] for v in p["bbox"]] == pytest.approx(
        [v for p in want for v in p["bbox"]])
    assert all(len(p["bbox"]) == 4 for p in kept["predictions"])
    assert [p["score"] for p in kept["predictions"]] == pytest.approx(
        [p["score"] for p in want if p["score"] >= floor])
