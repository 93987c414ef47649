"""Models of the campaigns app: fields, constraints and TextChoices states; no business logic in save()."""
