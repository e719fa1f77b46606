"""A prediction image is bounded by its pixels, not only its bytes: a 9000x9000 one-colour PNG is
10 KB but 81 megapixels to decode. The web process refuses it from the header with 413 on
`image` before it is queued; an instance refuses it again before decoding."""

import base64
import io

import pytest
from PIL import Image

from serving.instance import answer
from serving.transport import encode_image, transport
from tests.serving.conftest import png, wait_state
from tests.serving.test_services import publish

pytestmark = pytest.mark.django_db(transaction=True)


def blank_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def queued(monkeypatch):
    """Every image the web process hands to the transport, for instances."""
    handed: list[str] = []
    kind = type(transport())
    submit = kind.submit

    def spy(self, service_id, request_id, body, limit):
        handed.append(service_id)
        return submit(self, service_id, request_id, body, limit)

    monkeypatch.setattr(kind, "submit", spy)
    return handed


def test_a_small_file_with_huge_dimensions_is_refused_before_it_is_queued(
        api, funded, classifier, cpu_spec, serving_worker, queued):
    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    huge = blank_png(9000, 9000)
    assert len(huge) < 100_000
    client = api.as_(service["key"])
    path = f"/api/v1/services/{service['id']}/predict/"

    for response in (client.post(path, {"image": io.BytesIO(huge)}, format="multipart"),
                     client.post(path, {"image": base64.b64encode(huge).decode()},
                                 format="json")):
        assert response.status_code == 413, response.content
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert "9000x9000" in error["fields"]["image"][0]
    assert queued == [], "an oversize image reached the instances' queue"

    fine = client.post(path, {"image": io.BytesIO(png(1))}, format="multipart")
    assert fine.status_code == 200, fine.content
    assert queued == [service["id"]]


def test_the_limit_is_a_setting(api, funded, classifier, cpu_spec, serving_worker, queued,
                                settings):
    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    settings.SERVING_MAX_IMAGE_PIXELS = 28 * 28 - 1

    response = api.as_(service["key"]).post(f"/api/v1/services/{service['id']}/predict/",
                                            {"image": io.BytesIO(png(1))}, format="multipart")

    assert response.status_code == 413 and "image" in response.json()["error"]["fields"]
    assert queued == []


def test_an_instance_refuses_to_decode_past_the_limit(classifier_artifact, settings):
    from training_runtime.predict import Predictor

    predictor = Predictor.load(classifier_artifact, "cpu")
    settings.SERVING_MAX_IMAGE_PIXELS = 1000
    request = {"request_id": "r", "min_score": 0.0, "top_k": 1}

    big, small = answer(predictor, [{**request, "image": encode_image(blank_png(100, 100))},
                                    {**request, "image": encode_image(blank_png(20, 20))}])

    assert big["ok"] is False and big["code"] == "image_too_large" and "100x100" in big["message"]
    assert small["ok"] is True


def test_the_instances_refusal_is_a_413_on_image():
    from serving.gateway import _answer_of

    response = _answer_of({"ok": False, "code": "image_too_large", "message": "Too many."})

    assert response.status_code == 413
    assert b'"payload_too_large"' in response.content and b'"image"' in response.content
