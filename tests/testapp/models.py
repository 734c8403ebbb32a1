"""Test models covering the value kinds a DB payload must make JSON-safe."""

import uuid

from django.db import models


class Customer(models.Model):
    """Somebody who orders."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """An order with decimals, big integers, dates and a file."""

    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=20, default="new")
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    quantity = models.BigIntegerField(default=1)
    note = models.TextField(blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    attachment = models.FileField(upload_to="orders/", blank=True)

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class Document(models.Model):
    """A model with a UUID primary key (saved with a pk set before insert)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title


class Untracked(models.Model):
    """A model that never has triggers."""

    value = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"untracked {self.pk}"
