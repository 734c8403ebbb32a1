"""Mission Control: the Django admin as the operator's console for Eventing."""
