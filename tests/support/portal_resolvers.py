"""Owner resolvers for the portal tests (EVENTING["OWNER_RESOLVER"] takes a dotted path)."""


def no_owner(request):
    """A host whose logged-in users belong to no owner."""
    return None


def customer_of_user(request):
    """A host whose users act for the customer sharing their name (OWNER_MODEL = Customer)."""
    from tests.testapp.models import Customer

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return Customer.objects.filter(name=user.get_username()).first()
