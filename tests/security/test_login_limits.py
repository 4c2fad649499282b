"""Brute-force limits on every password form: counted per account and IP, shared
by nobody else behind the same NAT; /admin/login/ takes no password at all."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

OFFICE_IP = "203.0.113.7"  # one NAT address for a whole office
HOME_IP = "198.51.100.23"


def _login(client, email, password, ip=OFFICE_IP):
    return client.post(
        reverse("account_login"), {"login": email, "password": password}, REMOTE_ADDR=ip
    )


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def _fail(client, email, times, ip=OFFICE_IP):
    for _ in range(times):
        response = _login(client, email, "wrong-password", ip)
        assert response.status_code == 200  # the form again, with an error
    return response


@pytest.mark.django_db
def test_an_account_is_locked_after_five_failures_from_one_ip(client):
    user = UserFactory(email="victim@acme.example")
    _fail(client, user.email, 5)
    response = _login(client, user.email, PASSWORD)
    assert not _logged_in(client)
    assert "Too many failed login attempts" in response.content.decode()


@pytest.mark.django_db
def test_a_noisy_neighbour_behind_the_same_nat_locks_out_nobody_else(client, django_user_model):
    colleague = UserFactory(email="colleague@acme.example")
    for n in range(4):  # 16 failures from the office IP, on four other accounts
        _fail(client, f"someone{n}@acme.example", 4)
    assert _login(client, colleague.email, PASSWORD).status_code == 302
    assert _logged_in(client)


@pytest.mark.django_db
def test_the_owner_elsewhere_is_not_locked_out_by_failures_from_another_ip(client):
    user = UserFactory(email="owner@acme.example")
    _fail(client, user.email, 6, ip=OFFICE_IP)
    assert _login(client, user.email, PASSWORD, ip=HOME_IP).status_code == 302
    assert _logged_in(client)


@pytest.mark.django_db
def test_a_distributed_guess_at_one_account_is_capped(client, settings):
    settings.LOGIN_FAILED_PER_ACCOUNT_RATE = "6/h/key"
    user = UserFactory(email="target@acme.example")
    for n in range(6):
        _fail(client, user.email, 1, ip=f"192.0.2.{n + 1}")
    response = _login(client, user.email, PASSWORD, ip="192.0.2.200")
    assert not _logged_in(client)
    assert "Too many failed login attempts" in response.content.decode()


@pytest.mark.django_db
def test_a_successful_login_does_not_reset_the_budget(client):
    user = UserFactory(email="owner@acme.example")
    _fail(client, user.email, 4)
    assert _login(client, user.email, PASSWORD).status_code == 302
    client.logout()
    _fail(client, user.email, 1)
    _login(client, user.email, PASSWORD)
    assert not _logged_in(client)


@pytest.mark.django_db
def test_admin_login_takes_no_password_and_sends_to_the_limited_login(client):
    staff = UserFactory(email="staff@acme.example", is_staff=True, is_superuser=True)
    for _ in range(20):  # no budget is spent, and no password is ever checked here
        response = client.post(
            reverse("admin:login"), {"username": staff.email, "password": PASSWORD}
        )
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login") + "?next=")
    assert not _logged_in(client)
    get = client.get(reverse("admin:login") + "?next=/admin/accounts/user/")
    assert get["Location"] == reverse("account_login") + "?next=/admin/accounts/user/"


@pytest.mark.django_db
def test_staff_reach_the_admin_through_the_allauth_login(client):
    staff = UserFactory(email="staff@acme.example", is_staff=True, is_superuser=True)
    assert _login(client, staff.email, PASSWORD).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    # Signed in, /admin/login/ is the admin's own page again (it forwards staff on).
    assert client.get(reverse("admin:login"))["Location"] == reverse("admin:index")


@pytest.mark.django_db
def test_behind_a_proxy_the_limits_key_on_the_visitors_address(client, settings):
    """Every request comes from the proxy's address; the forwarded one counts."""
    settings.LEADS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    user = UserFactory(email="owner@acme.example")

    def via_proxy(ip, password):
        return client.post(
            reverse("account_login"),
            {"login": user.email, "password": password},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"{ip}",
        )

    for _ in range(6):
        via_proxy(OFFICE_IP, "wrong-password")
    assert via_proxy(HOME_IP, PASSWORD).status_code == 302
    assert _logged_in(client)
