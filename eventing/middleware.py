"""Public import path of the actor middleware (`eventing.middleware.ActorMiddleware`)."""

from eventing.capture.actor import ActorMiddleware

__all__ = ["ActorMiddleware"]
