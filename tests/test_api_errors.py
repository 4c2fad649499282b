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
