"""Models of the execution app: fields, constraints and TextChoices states; no business logic in save()."""
