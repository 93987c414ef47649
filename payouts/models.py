"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""
