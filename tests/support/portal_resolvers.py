"""Owner resolvers for the portal tests (EVENTING["OWNER_RESOLVER"] takes a dotted path)."""


def no_owner(request):
    """A host whose logged-in users belong to no owner."""
    return None
