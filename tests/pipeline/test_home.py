"""The rep queue is the sales rep's home; other roles keep the overview."""

from django.urls import reverse


def test_a_sales_rep_lands_on_the_queue(client_for, org, other_org, sales_rep, admin):
    home = reverse("accounts:org_home", kwargs={"org_slug": org.slug})
    response = client_for(sales_rep).get(home)
    assert response.status_code == 302
    assert response["Location"] == reverse("pipeline:queue", kwargs={"org_slug": org.slug})
    assert client_for(sales_rep).get(home + "?overview=1").status_code == 200
    assert client_for(admin).get(home).status_code == 200
