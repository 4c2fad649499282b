import pytest


@pytest.mark.django_db
def test_unknown_api_url_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_unknown_page_is_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"couldn" in response.content


def test_json_body_raises_a_refused_body_for_the_api_to_answer(rf):
    # The body check renders nothing itself (leadflow.api's decorator answers it):
    # accounts.api_auth needs no way back up to the API.
    from accounts.api_auth import json_body
    from leadflow.core.errors import ApiError

    request = rf.post("/api/v1/leads", data=b'{"email": ', content_type="application/json")
    with pytest.raises(ApiError) as caught:
        json_body(1_000)(lambda request: None)(request)
    assert (caught.value.status, caught.value.code) == (400, "malformed_json")

    too_large = rf.post(
        "/api/v1/leads", data=b'"' + b"x" * 2_000 + b'"', content_type="application/json"
    )
    with pytest.raises(ApiError) as caught:
        json_body(1_000)(lambda request: None)(too_large)
    assert (caught.value.status, caught.value.code) == (413, "payload_too_large")
