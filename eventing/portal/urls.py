"""The owners' portal, mountable where the host wants it:
`path("portal/", include("eventing.portal.urls"))`."""

from django.urls import path

from eventing.portal import views

app_name = "eventing_portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("enter/<str:token>/", views.enter, name="enter"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("catalog/", views.catalog, name="catalog"),
    path("endpoints/", views.subscriptions, name="subscriptions"),
    path("endpoints/new/", views.create, name="create"),
    path("endpoints/<uuid:pk>/", views.detail, name="detail"),
    path("endpoints/<uuid:pk>/edit/", views.edit, name="edit"),
    path("endpoints/<uuid:pk>/enabled/", views.set_enabled, name="set_enabled"),
    path("endpoints/<uuid:pk>/delete/", views.delete, name="delete"),
    path("endpoints/<uuid:pk>/test/", views.test_send, name="test"),
    path("endpoints/<uuid:pk>/secret/", views.reveal_secret, name="secret"),
    path("endpoints/<uuid:pk>/rotate/", views.rotate_secret, name="rotate"),
    path("endpoints/<uuid:pk>/deliveries/", views.deliveries, name="deliveries"),
    path("endpoints/<uuid:pk>/deliveries/<uuid:event_id>/", views.delivery, name="delivery"),
    path(
        "endpoints/<uuid:pk>/deliveries/<uuid:event_id>/redeliver/",
        views.redeliver,
        name="redeliver",
    ),
]
