"""The host project's own model; Eventing knows nothing about it until a trigger names it."""

from django.db import models


class Book(models.Model):
    """A book in the library."""

    title = models.CharField(max_length=200, help_text="Title of the book.")
    author = models.CharField(max_length=200, help_text="Who wrote it.")
    price = models.DecimalField(max_digits=8, decimal_places=2, help_text="Price in euros.")
    published = models.DateField(null=True, blank=True, help_text="Publication date.")

    class Meta:
        verbose_name = "book"
        verbose_name_plural = "books"

    def __str__(self) -> str:
        return self.title
