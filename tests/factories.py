"""factory-boy factories shared across test packages."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group, User

from mrmarket.roles import Role

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self: User, create: bool, extracted: tuple[Role, ...] | None, **kwargs: object) -> None:
        for role in extracted or ():
            if role is Role.STAFF:
                self.is_staff = True
            else:
                # get_or_create: transactional tests flush the groups the data migration made.
                self.groups.add(Group.objects.get_or_create(name=role.value)[0])
        if create:
            self.save()


def user_with(*roles: Role, **fields: object) -> User:
    """A saved user holding the given roles (typed entry point to UserFactory)."""
    made: User = UserFactory.create(roles=roles, **fields)
    return made
