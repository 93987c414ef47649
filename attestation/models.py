"""Models of the attestation app: fields, constraints and TextChoices states; no business logic in save()."""
