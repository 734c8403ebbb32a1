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


class OrderLine(models.Model):
    """A line of an order, deleted with it (on_delete=CASCADE)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=20)

    def __str__(self) -> str:
        return self.sku


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


class Specimen(models.Model):
    """One field of every kind a DB event renders, for comparing the two capture modes."""

    char = models.CharField(max_length=50, blank=True)
    text = models.TextField(blank=True)
    slug = models.SlugField(blank=True)
    email = models.EmailField(blank=True)
    url = models.URLField(blank=True)
    flag = models.BooleanField(default=False)
    maybe = models.BooleanField(null=True)
    small = models.SmallIntegerField(default=0)
    integer = models.IntegerField(default=0)
    big = models.BigIntegerField(default=0)
    positive = models.PositiveIntegerField(default=0)
    positive_big = models.PositiveBigIntegerField(default=0)
    ratio = models.FloatField(default=0.0)
    amount = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    day = models.DateField(null=True)
    moment = models.DateTimeField(null=True)
    clock = models.TimeField(null=True)
    span = models.DurationField(null=True)
    uid = models.UUIDField(null=True)
    doc = models.JSONField(null=True)
    blob = models.BinaryField(null=True)
    upload = models.FileField(upload_to="specimens/", blank=True)
    ip = models.GenericIPAddressField(null=True)
    owner = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL)
    document = models.ForeignKey(Document, null=True, on_delete=models.SET_NULL)
    renamed = models.IntegerField(default=0, db_column="renamed_column")
    token = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"specimen {self.pk}"
